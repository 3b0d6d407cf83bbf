"""The ``streamseg`` command: run, bench, eval, train, export, models, plugins.

Errors the user can fix (a bad path, an unknown model, a wrong config key) print one line
and exit with code 2; ``--verbose`` adds the traceback of an internal failure.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import sys
from pathlib import Path

from streamseg.errors import ConfigError, OutputError, StreamsegError
from streamseg.logs import configure_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by run and bench; defaults are None so that only given flags override the config file."""
    parser.add_argument("source", help="video file, image folder, or 'demo' (a synthetic road scene)")
    parser.add_argument("--config", type=Path, help="YAML file with the same option names (flags override it)")
    parser.add_argument("--model", help="registered model name (see `streamseg models`)")
    parser.add_argument("--weights", help="state dict to use instead of the bundled weights")
    parser.add_argument("--backend", help="auto (default), torch, onnxruntime, openvino, ...")
    parser.add_argument("--precision", help="auto (default), fp32, bf16, fp16, int8")
    parser.add_argument("--input-size", dest="input_size", help="network input WIDTHxHEIGHT (default 480x360)")
    parser.add_argument("--threads", type=int, help="inference threads (default: the library's)")
    parser.add_argument(
        "--streams", type=int,
        help="concurrent inferences splitting those threads (default 1: lowest latency; 2: more fps on a small CPU)",
    )
    parser.add_argument("--queue-size", dest="queue_size", type=int, help="frames each queue holds (default: 1 for a live source, 4 for a file)")
    parser.add_argument("--crf", help="off (default), async, sync")
    parser.add_argument("--crf-parameters", dest="crf_parameters", help="tuned CRF settings (YAML from tools/tune_crf.py)")
    parser.add_argument("--crf-workers", dest="crf_workers", type=int, help="CRF processes (default 1)")
    parser.add_argument(
        "--crf-cpu-share", dest="crf_cpu_share", type=float,
        help="most of one core each CRF process may use, in (0, 1] (default: no cap)",
    )
    parser.add_argument(
        "--refiner", metavar="NAME[:K=V,...]",
        help="what --crf runs: dense-crf (default; e.g. dense-crf:iterations=3) or a plugin's refiner (`streamseg plugins`)",
    )
    parser.add_argument("--flow", help="temporal smoothing: off (default), dis, farneback, flownet, or a plugin's estimator")
    parser.add_argument("--flow-weight", dest="flow_weight", type=float, help="share of the warped previous frame (default 0.5)")
    parser.add_argument(
        "--flow-resolution", dest="flow_resolution", type=float,
        help="flow grid as a fraction of the network's input (default 0.25 for --flow, 0.5 for --key-every; 1 is exact)",
    )
    parser.add_argument("--key-every", dest="key_every", type=int, help="run the network every K frames, flow in between")
    parser.add_argument("--max-frames", dest="max_frames", type=int, help="stop after N frames")
    parser.add_argument("--metrics-port", dest="metrics_port", type=int, help="serve /metrics and /healthz on this port")
    parser.add_argument("--metrics-host", dest="metrics_host", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--engine-dir", dest="engine_dir", help="compiled engine cache (default $XDG_CACHE_HOME/streamseg, else ~/.cache/streamseg)",
    )
    parser.add_argument("--calibration-data", dest="calibration_data", help="CamVid folder for int8 calibration")
    parser.add_argument(
        "--rtsp-give-up-after", dest="rtsp_give_up_after", type=float, metavar="SECONDS",
        help="end the run when an rtsp:// source stays down this long, at start or later (default: keep retrying)",
    )
    parser.add_argument(
        "--out-preset", dest="out_preset",
        help="x264 speed preset of the --out video: ultrafast (default: least CPU, larger file) ... veryslow",
    )
    parser.add_argument(
        "--sink", dest="sinks", action="append", metavar="NAME:TARGET",
        help="one more output from the sinks table, built in or a plugin's (`streamseg plugins`), e.g. jsonl:stats.jsonl; repeatable",
    )


_RUN_OPTION_NAMES = (
    "model", "weights", "backend", "precision", "input_size", "threads", "streams", "queue_size", "crf", "crf_parameters",
    "crf_workers", "crf_cpu_share", "flow", "flow_weight", "flow_resolution", "key_every", "max_frames",
    "metrics_port", "metrics_host", "engine_dir", "calibration_data", "rtsp_give_up_after", "out_preset", "refiner", "sinks",
)


def _run_config(args: argparse.Namespace, **extra):
    from streamseg.config import build_config

    overrides = {name: getattr(args, name) for name in _RUN_OPTION_NAMES}
    overrides.update(source=args.source, **extra)
    return build_config(args.config, overrides)


def _run_summary(result) -> str:
    """'120 frames in 4.0 s (30.0 fps), 0 dropped, video_file lost 80 frames': what each failed output lacks."""
    losses = "".join(f", {name} lost {count} frame{'s' * (count != 1)}" for name, count in result.sink_losses.items())
    return f"{result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps), {result.dropped} dropped{losses}"


def command_run(args: argparse.Namespace) -> int:
    from streamseg.pipeline.signals import stop_on_signals

    # Installed before anything is opened: a signal during start-up (loading a model, building an
    # engine) unwinds what was opened so far, SIGTERM as well as SIGINT; then it stops the run.
    with stop_on_signals() as signals:
        from streamseg.pipeline.assemble import assemble

        config = _run_config(args, out=args.out, stats=args.stats, masks=args.masks, serve=args.serve,
                             rtsp_out=args.rtsp_out, alpha=args.alpha)
        with assemble(config) as assembly:
            pipeline = signals.pipeline = assembly.pipeline()
            result = pipeline.run()
    print(_run_summary(result), file=sys.stderr)
    for sink in assembly.sinks:  # each failed output said why when it failed; only finished files are named here
        if sink.completed_output is not None:
            print(f"wrote {sink.completed_output}", file=sys.stderr)
    if result.aborted:  # a second signal; its handler has said so
        return EXIT_INTERRUPTED
    if result.error:
        print(f"streamseg: error: {result.error}", file=sys.stderr)
        if args.verbose and pipeline.error_trace:
            print(pipeline.error_trace, file=sys.stderr)
        return EXIT_FAILED
    if result.damage:
        print(f"streamseg: error: {result.damage}", file=sys.stderr)
        return EXIT_USAGE
    if result.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.sink_errors else EXIT_OK


def command_bench(args: argparse.Namespace) -> int:
    from streamseg.bench import run_benchmark, summary

    if args.rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, not {args.rounds}")
    report = _output_file(args.json, "--json") if args.json is not None else None
    config = _run_config(args, out=args.out)
    results = run_benchmark(config, rounds=args.rounds)
    print(summary(results))
    if report is not None:
        _write_report(report, results)
    return EXIT_OK


def _output_file(text: str, option: str) -> Path:
    """The file an option names, checked before any work: a report that cannot be written should not cost a whole run."""
    path = Path(text).expanduser()
    if not text.strip():
        raise OutputError(f"{option} needs a file name")
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"{option} {path}: {parent} is not an existing folder")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{option} {path} is not writable")
    return path


def _write_report(path: Path, record: dict) -> None:
    try:
        path.write_text(json.dumps(record, indent=2) + "\n")
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
    print(f"wrote {path}", file=sys.stderr)


def command_eval(args: argparse.Namespace) -> int:
    from streamseg.evaluate_camvid import evaluate_camvid
    from streamseg.models.weights import bundled_crf_parameters
    from streamseg.refine import CrfParameters, read_crf_parameters

    if args.crf not in ("off", "sync"):
        raise ConfigError("eval refines every frame: use --crf off or --crf sync")
    report = _output_file(args.json, "--json") if args.json is not None else None
    crf = None
    if args.crf == "sync":
        path = _input_path(args.crf_parameters, "--crf-parameters") or bundled_crf_parameters(args.model)
        crf = read_crf_parameters(path) if path else CrfParameters()
    result = evaluate_camvid(
        _input_path(args.data_dir, "DATA_DIR"), split=args.split, model=args.model,
        weights=_input_path(args.weights, "--weights"),
        backend=args.backend, precision=args.precision, scales=tuple(args.scales), crf=crf, max_frames=args.max_frames,
    )
    print(result.table())
    if report is not None:
        _write_report(report, result.as_dict())
    return EXIT_OK


def command_train(args: argparse.Namespace) -> int:
    from streamseg.training.trainer import TrainConfig, Trainer

    config = TrainConfig(
        model=args.model, data=_input_path(args.data, "--data"), out=_input_path(args.out, "--out"), epochs=args.epochs,
        batch_size=args.batch_size,
        crop=tuple(args.crop), learning_rate=args.lr, bf16=args.bf16, device=args.device, threads=args.threads,
        eval_every=args.eval_every, init_from=_input_path(args.init_from, "--init-from"),
        init_encoder_from=_input_path(args.init_encoder_from, "--init-encoder-from"),
        freeze_encoder_epochs=args.freeze_encoder_epochs,
    )
    best = Trainer(config).run()
    print(f"best val mIoU {100 * best:.1f} (checkpoints in {args.out})")
    return EXIT_OK


def command_models(args: argparse.Namespace) -> int:
    from streamseg.models import DEFAULT_MODEL, MODELS

    if args.name:
        spec = MODELS.get(args.name)
        print(f"{spec.name}: {spec.description}")
        if spec.weights is None:
            print("no trained weights ship with this build")
        else:
            print(json.dumps(spec.weights.card, indent=2))
        return EXIT_OK
    for name in MODELS.names():
        spec = MODELS.get(name)
        weights = spec.weights
        marker = "*" if name == DEFAULT_MODEL else " "
        if weights is None:
            trained = "no trained weights yet"
        else:
            miou = weights.card.get("val_miou")
            trained = f"trained, CamVid val mIoU {100 * miou:.1f}" if miou is not None else "trained"
        print(f"{marker} {name:<16} {spec.description}  [{trained}]")
    print("* default model; `streamseg models NAME` shows its model card")
    return EXIT_OK


def command_export(args: argparse.Namespace) -> int:
    """Builds the engine-cache entries a backend needs ahead of time, so the first run starts at once."""
    import shutil

    from streamseg.backends import BackendOptions, create_backend
    from streamseg.backends.engine_cache import EngineCache
    from streamseg.backends.export import cached_onnx
    from streamseg.backends.options import default_engine_dir
    from streamseg.config import PRECISIONS, check_input_size, parse_size
    from streamseg.models import load_model

    if args.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {args.precision!r}")
    input_size = check_input_size(parse_size(args.input_size))
    copy_to = _output_file(args.out, "--out") if args.out is not None else None
    model, origin = load_model(args.model, _input_path(args.weights, "--weights"))
    options = BackendOptions(
        engine_dir=_input_path(args.engine_dir, "--engine-dir") or default_engine_dir(), model_name=args.model,
        calibration_data=_input_path(args.calibration_data, "--calibration-data"),
    )
    if args.backend == "onnx":
        path = cached_onnx(model, input_size, options, EngineCache(options.engine_dir))
    else:
        with create_backend(args.backend, model, input_size, args.precision, options) as backend:
            path = getattr(backend, "engine_path", None)
            print(f"ready: {backend.describe()} ({origin} weights)", file=sys.stderr)
    if path is not None:
        print(f"engine: {path}")
        if copy_to is not None:
            shutil.copyfile(path, copy_to)
            print(f"copied to {copy_to}")
    return EXIT_OK


def _input_path(text: str | None, option: str) -> Path | None:
    """An optional path option; an empty one is refused rather than read as the working directory."""
    if text is None:
        return None
    if not text.strip():
        raise ConfigError(f"{option} needs a path")
    return Path(text).expanduser()


def command_plugins(args: argparse.Namespace) -> int:
    from streamseg.plugins import list_plugins

    listing = list_plugins()
    for table, name, origin, description in listing.parts:
        print(f"{table:<16} {name:<14} {origin:<24} {description}")
    for failure in listing.failures:
        print(f"failed to load plugin {failure.entry_point} ({failure.target}, {failure.distribution}): {failure.error}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamseg", description="Real-time semantic segmentation of live video.")
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks of internal failures")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="segment a stream and write or serve the overlay")
    _add_run_options(run)
    run.add_argument("--out", help="write the overlay video here (H.264 MP4)")
    run.add_argument("--stats", help="write per-frame statistics here (JSON lines)")
    run.add_argument("--masks", help="write per-frame label maps (PNG) into this folder")
    run.add_argument("--serve", help="web preview on HOST:PORT (e.g. 127.0.0.1:8080)")
    run.add_argument("--rtsp-out", dest="rtsp_out", help="publish the overlay to this rtsp:// URL (a server that accepts RECORD)")
    run.add_argument("--alpha", type=float, help="overlay opacity (default 0.5)")
    run.set_defaults(handler=command_run)

    bench = commands.add_parser("bench", help="model-only, naive-loop and pipelined fps in one run")
    _add_run_options(bench)
    bench.add_argument("--json", help="write the results here")
    bench.add_argument("--out", help="the pipelined run also writes the overlay video here, as `run --out` does")
    bench.add_argument(
        "--rounds", type=int, default=1, help="alternate the measurements this many times and report the medians (default 1)"
    )
    bench.set_defaults(handler=command_bench)

    evaluate = commands.add_parser("eval", help="mIoU on a CamVid-layout folder")
    evaluate.add_argument("data_dir")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--model", default="erfnet")
    evaluate.add_argument("--weights")
    evaluate.add_argument("--backend", default="torch")
    evaluate.add_argument("--precision", default="fp32")
    evaluate.add_argument("--scales", type=float, nargs="+", default=[1.0], help="multi-scale inference, e.g. 0.75 1 1.25")
    evaluate.add_argument("--crf", default="off", help="off (default) or sync: refine every frame")
    evaluate.add_argument("--crf-parameters", dest="crf_parameters", help="tuned CRF settings (YAML)")
    evaluate.add_argument("--max-frames", dest="max_frames", type=int)
    evaluate.add_argument("--json")
    evaluate.set_defaults(handler=command_eval)

    train = commands.add_parser("train", help="train a model on CamVid (resumes from OUT/last.pt)")
    train.add_argument("--model", default="erfnet")
    train.add_argument("--data", default="../shared/data/camvid")
    train.add_argument("--out", required=True)
    train.add_argument("--epochs", type=int, default=150)
    train.add_argument("--batch-size", dest="batch_size", type=int, default=8)
    train.add_argument("--crop", type=int, nargs=2, default=(320, 320), metavar=("H", "W"))
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--bf16", action="store_true", help="bf16 autocast on a CPU with native bf16")
    train.add_argument("--device", default="cpu")
    train.add_argument("--threads", type=int, default=0)
    train.add_argument("--eval-every", dest="eval_every", type=int, default=1)
    train.add_argument(
        "--init-from", dest="init_from", metavar="WEIGHTS",
        help="fine-tune: start from these weights (a checkpoint or shipped .pt) with a fresh optimizer and schedule",
    )
    train.add_argument(
        "--init-encoder-from", dest="init_encoder_from", metavar="WEIGHTS",
        help="start only the encoder (encoder.* tensors) from another model's weights, e.g. erfnet's for deeplab",
    )
    train.add_argument(
        "--freeze-encoder-epochs", dest="freeze_encoder_epochs", type=int, default=0, metavar="N",
        help="keep the encoder fixed for the first N epochs, so a new head does not wreck a started encoder",
    )
    train.set_defaults(handler=command_train)

    export = commands.add_parser("export", help="build a backend's compiled engine ahead of time (into the engine cache)")
    export.add_argument("--model", default="erfnet")
    export.add_argument("--weights")
    export.add_argument("--backend", required=True, help="onnx, onnxruntime, openvino, tensorrt, cuda")
    export.add_argument("--precision", default="fp32", help="fp32, bf16, fp16, int8")
    export.add_argument("--input-size", dest="input_size", default="480x360")
    export.add_argument(
        "--engine-dir", dest="engine_dir", help="compiled engine cache (default $XDG_CACHE_HOME/streamseg, else ~/.cache/streamseg)"
    )
    export.add_argument("--calibration-data", dest="calibration_data", help="CamVid folder, for int8")
    export.add_argument("--out", help="also copy the artifact (e.g. the .onnx file) here")
    export.set_defaults(handler=command_export)

    models = commands.add_parser("models", help="list the models, or show one model's card")
    models.add_argument("name", nargs="?")
    models.set_defaults(handler=command_models)

    plugins = commands.add_parser("plugins", help="list flow estimators, refiners, sources and sinks, with plugins")
    plugins.set_defaults(handler=command_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A native crash (a backend library's segfault) then prints where it happened instead of dying silently.
    # The original stderr is used: it has a file descriptor even when sys.stderr is redirected.
    if sys.__stderr__ is not None:
        faulthandler.enable(file=sys.__stderr__)
    args = build_parser().parse_args(argv)
    configure_logging(verbose=args.verbose)
    try:
        return args.handler(args)
    except StreamsegError as error:
        print(f"streamseg: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:  # before or after a run: nothing was in flight
        name = getattr(interrupt, "signal_name", None)
        print(f"streamseg: interrupted{f' ({name})' if name else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
