"""The ``streamseg`` command: run, bench, eval, train, export, models, plugins.

Errors the user can fix (a bad path, an unknown model, a wrong config key) print one line
and exit with their class's ``exit_code`` (2); an interrupt exits 130, a failed run 1. The
exit status is chosen by the exception's class or the run's result flags, never by reading a
message. Diagnostics go through ``logging`` (one handler, ``streamseg.observability.logs``); what a command
prints on stdout is its output. ``--verbose`` adds debug lines and the traceback of a failed run.
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import json
import logging
import os
import sys
from pathlib import Path

from streamseg.errors import EXIT_USAGE, ConfigError, OutputError, StreamsegError
from streamseg.observability.logs import configure_logging
from streamseg.options import DEFAULT_MODEL
from streamseg.training.config import LOSSES, TrainConfig
from streamseg.training.recipes import RECIPE_SETTINGS, RECIPES, recipe

# The exit statuses, one per way a command ends. A user-fixable error exits with its class's
# ``exit_code`` (``StreamsegError.exit_code`` is EXIT_USAGE); anything else raised is a bug and
# exits 1 with Python's traceback.
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130

log = logging.getLogger(__name__)


def _add_run_options(parser: argparse.ArgumentParser, command: str) -> None:
    """SOURCE and every option ``streamseg.config.RunConfig`` declares for ``command`` (run or bench), and --config."""
    from streamseg.config import add_run_arguments

    add_run_arguments(parser, command)
    parser.add_argument("--config", type=Path, help="YAML file with the same option names (flags override it)")


def _run_config(args: argparse.Namespace, **extra):
    from streamseg.config import build_config, option_names, sources_as_streams

    overrides = {name: getattr(args, name) for name in option_names() if hasattr(args, name)}
    from_sources = sources_as_streams(args.source)
    if "streams" in from_sources and getattr(args, "streams", None):  # `run A B --stream c=C`: all three
        from_sources["streams"] += args.streams
    overrides.update(from_sources)
    overrides.update(extra)
    return build_config(args.config, overrides)


def command_run(args: argparse.Namespace) -> int:
    from streamseg.pipeline.signals import stop_on_signals

    # Installed before anything is opened: a signal during start-up (loading a model, building an
    # engine) unwinds what was opened so far, SIGTERM as well as SIGINT; then it stops the run.
    with stop_on_signals() as signals:
        from streamseg.pipeline.assemble import assemble_run

        config = _run_config(args, out=args.out, stats=args.stats, masks=args.masks, serve=args.serve,
                             rtsp_out=args.rtsp_out, alpha=args.alpha)
        if config.ray is not None:  # the same streams on a Ray cluster: streamseg.cluster
            from streamseg.cluster.serve import run_on_ray
            return exit_status(run_on_ray(config, signals))
        with assemble_run(config) as run:  # one source or many: each stream reports itself as it ends
            signals.pipeline = run
            results = run.run()
    return exit_status(results)


def command_serve(args: argparse.Namespace) -> int:
    """``serve --ray``, the name ``run --ray`` had before: kept for one release, and says so."""
    if args.ray is None:
        raise ConfigError("serve needs --ray ADDRESS; it is now `streamseg run --ray ADDRESS`")
    log.warning("`streamseg serve --ray` is deprecated and goes in the next release: use `streamseg run --ray`")
    return command_run(args)


def _stream_status(result) -> int:
    if result.aborted:  # a second signal (a flag of the result, not its error text); its handler has said so
        return EXIT_INTERRUPTED
    if result.error:
        return EXIT_FAILED
    if result.damage:
        return EXIT_USAGE
    if result.stopped_early:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.sink_errors else EXIT_OK


def exit_status(results) -> int:
    """The exit status of a run (a ``StreamsResult``, on one machine or on Ray): each stream has said how it
    ended, by name; the run exits as its worst stream would alone."""
    if len(results.streams) > 1:
        log.info("%d streams, %d frames in all", len(results.streams), results.frames)
    if results.aborted:
        return EXIT_INTERRUPTED
    statuses = [_stream_status(result) for result in results.streams.values()]
    for status in (EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED):
        if status in statuses:
            return status
    return EXIT_OK


def command_bench(args: argparse.Namespace) -> int:
    from streamseg.bench.measure import run_benchmark, summary

    if args.rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, not {args.rounds}")
    report = _output_file(args.json, "--json") if args.json is not None else None
    figures = None
    if args.report is not None:
        from streamseg.bench.report import report_folder, require_matplotlib, write_figures

        figures = report_folder(args.report)
        require_matplotlib()
    config = _run_config(args, out=args.out)
    if config.streams:
        raise ConfigError("bench measures one source; for several at once use tools/bench_streams.py")
    results = run_benchmark(config, rounds=args.rounds)
    print(summary(results))
    if report is not None:
        _write_report(report, results)
    if figures is not None:
        for path in write_figures(results, figures):
            log.info("wrote %s", path)
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
    log.info("wrote %s", path)


def command_eval(args: argparse.Namespace) -> int:
    from streamseg.config import config_from_values
    from streamseg.eval.folder import evaluate_folder
    from streamseg.modelfile import is_model_file
    from streamseg.models.weights import bundled_crf_parameters
    from streamseg.refine import CrfParameters, read_crf_parameters

    if args.crf not in ("off", "sync"):
        raise ConfigError("eval refines every frame: use --crf off or --crf sync")
    report = _output_file(args.json, "--json") if args.json is not None else None
    crf = None
    if args.crf == "sync":
        path = _input_path(args.crf_parameters, "--crf-parameters") or bundled_crf_parameters(args.model)
        crf = read_crf_parameters(path) if path else CrfParameters()
    described = _model_description_given(args)
    config = config_from_values({
        # The reference backend for a built-in model; a model file's is the fastest that reads it (torch cannot).
        "model": args.model, "weights": _input_path(args.weights, "--weights"),
        "backend": args.backend or ("auto" if is_model_file(args.model) else "torch"),
        "precision": args.precision, "calibration_data": _input_path(args.calibration_data, "--calibration-data"),
        **described,  # a model file's description (--labels, --mean, ...) and the network's input size
    })
    result = evaluate_folder(
        _input_path(args.data_dir, "DATA_DIR"), config, split=args.split, hold_out_drive=args.hold_out_drive,
        scales=tuple(args.scales), crf=crf, max_frames=args.max_frames,
    )
    print(result.table())
    if report is not None:
        _write_report(report, result.as_dict())
    return EXIT_OK


def command_calibrate_confidence(args: argparse.Namespace) -> int:
    """Fits the model's confidence calibration on a labelled folder and keeps it: a model file's sidecar, or ``--out``."""
    from streamseg.config import config_from_values
    from streamseg.eval.calibration import calibrate
    from streamseg.eval.confidence_record import confidence_record, write_confidence_json, write_sidecar_confidence
    from streamseg.eval.confidence_scores import folder_margins
    from streamseg.image.confidence import DEFAULT_CONTEXT_SHARE
    from streamseg.modelfile import is_model_file
    from streamseg.modelfile.description import parse_field

    report = _output_file(args.json, "--json") if args.json is not None else None
    out = _output_file(args.out, "--out") if args.out is not None else None
    described = _model_description_given(args)
    # Here --context-share is the share to fit at, not part of the model's present calibration (whose T it would not match).
    given_share = described.pop("context_share", None)
    context_share = DEFAULT_CONTEXT_SHARE if given_share is None else parse_field("context_share", given_share, "--context-share")
    config = config_from_values({
        "model": args.model, "weights": _input_path(args.weights, "--weights"),
        "backend": args.backend or ("auto" if is_model_file(args.model) else "torch"),
        "precision": args.precision, "confidence_threshold": args.confidence_threshold, **described,
    })
    margins = folder_margins(
        _input_path(args.data, "--data"), config, split=args.split, hold_out_drive=args.hold_out_drive, max_frames=args.max_frames,
    )
    fitted_on = f"{margins.description}, {len(margins.frames)} frames"
    fit = calibrate(margins.frames, threshold=config.confidence_threshold, source=fitted_on, context_share=context_share)
    print(fit.table())
    print("(measured on the frames it was fitted on; tools/confidence_report.py measures on frames it was not)")
    record = confidence_record(fit.calibration, fitted_on)
    if is_model_file(config.model):
        log.info("wrote confidence: to %s", write_sidecar_confidence(Path(config.model), record))
    if out is not None:
        log.info("wrote %s", write_confidence_json(out, record))
    elif not is_model_file(config.model):
        log.warning("the temperature is not kept anywhere: give --out FILE.json to write it")
    if report is not None:
        _write_report(report, {"model": margins.model, "fitted_on": fitted_on, **fit.as_dict(), "images": margins.names})
    return EXIT_OK


def command_train(args: argparse.Namespace) -> int:
    from streamseg.training.trainer import Trainer

    settings = recipe(args.recipe)  # the recipe's settings, then the command line's
    settings.update({name: getattr(args, name) for name in TRAIN_FLAGS if getattr(args, name) is not None})
    for name in ("crop", "scale_range"):
        if name in settings:
            settings[name] = tuple(settings[name])
    config = TrainConfig(
        data=_input_path(args.data, "--data"), out=_input_path(args.out, "--out"),
        init_from=_input_path(args.init_from, "--init-from"),
        init_encoder_from=_input_path(args.init_encoder_from, "--init-encoder-from"),
        **settings,
    )
    best = Trainer(config).run()
    held_out = f"best held-out mIoU {100 * best:.1f}" if best >= 0 else "nothing held out"
    print(f"{held_out} (checkpoints in {args.out}; last.pt is the result of the schedule)")
    return EXIT_OK


# ``streamseg train`` flags: the TrainConfig field each sets, its type, and help. Defaults are
# TrainConfig's, or the --recipe's, never written here.
TRAIN_FLAGS: dict[str, tuple[str, dict]] = {
    "model": ("--model", {"help": "registered model name (default {default})"}),
    "epochs": ("--epochs", {"type": int, "help": "length of the fixed schedule (default {default})"}),
    "batch_size": ("--batch-size", {"type": int, "help": "default: the recipe's, else {default}"}),
    "crop": ("--crop", {"type": int, "nargs": 2, "metavar": ("H", "W"), "help": "training crop (default: the recipe's)"}),
    "learning_rate": ("--lr", {"type": float, "help": "Adam's base rate, poly-decayed (default: the recipe's, else {default})"}),
    "bf16": ("--bf16", {"action": "store_const", "const": True, "help": "bf16 autocast on a CPU with native bf16"}),
    "device": ("--device", {"help": "cpu or cuda (default {default})"}),
    "threads": ("--threads", {"type": int, "help": "training threads (default 0: the library's)"}),
    "eval_every": ("--eval-every", {"type": int, "help": "epochs between scores on the held-out frames (default {default})"}),
    "save_every": ("--save-every", {"type": int, "help": "epochs between last.pt writes (default {default})"}),
    "freeze_encoder_epochs": ("--freeze-encoder-epochs", {
        "type": int, "metavar": "N",
        "help": "keep the encoder fixed for the first N epochs, so a new head does not wreck a started encoder",
    }),
    "train_split": ("--train-split", {"help": "frames to train on: train (default) or train+val (all 468)"}),
    "hold_out_drive": ("--hold-out-drive", {
        "metavar": "DRIVE", "help": "never train on this drive's frames and score on all of them (e.g. 0006R0)",
    }),
    "scale_range": ("--scale-range", {"type": float, "nargs": 2, "metavar": ("LOW", "HIGH"), "help": "random scale (default: the recipe's)"}),
    "jitter": ("--jitter", {"type": float, "help": "brightness, contrast, saturation in 1 +- this (default: the recipe's)"}),
    "hue": ("--hue", {"type": float, "help": "hue rotation in +- this many turns (default: the recipe's)"}),
    "blur": ("--blur", {"type": float, "help": "probability of a 3 or 5 px blur (default: the recipe's)"}),
    "noise": ("--noise", {"type": float, "help": "Gaussian noise up to this standard deviation (default: the recipe's)"}),
    "loss": ("--loss", {"choices": LOSSES, "help": "weighted-ce or ohem (default: the recipe's)"}),
}


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)} | {"model": DEFAULT_MODEL}
    for name, (flag, settings) in TRAIN_FLAGS.items():
        settings = dict(settings)
        settings["help"] = settings.get("help", "").replace("{default}", str(defaults[name]))
        # A recipe's settings default to None here, so that only what is typed overrides the recipe.
        default = None if name in RECIPE_SETTINGS else defaults[name]
        train.add_argument(flag, dest=name, default=default, **settings)
    train.add_argument("--recipe", default="baseline", choices=sorted(RECIPES), help="named settings (default baseline)")
    train.add_argument("--data", default="../shared/data/camvid")
    train.add_argument("--out", required=True)
    train.add_argument(
        "--init-from", dest="init_from", metavar="WEIGHTS",
        help="fine-tune: start from these weights (a checkpoint or shipped .pt) with a fresh optimizer and schedule",
    )
    train.add_argument(
        "--init-encoder-from", dest="init_encoder_from", metavar="WEIGHTS",
        help="start only the encoder (encoder.* tensors) from another model's weights, e.g. erfnet's for deeplab",
    )


def _inspect_model_file(args: argparse.Namespace) -> int:
    """Prints a model file's resolved description, each field with the source it came from."""
    from streamseg.config import config_from_values
    from streamseg.modelfile import is_model_file, open_model_file

    if args.path is None or not is_model_file(args.path):
        raise ConfigError("models inspect needs a model file: .onnx, .xml (OpenVINO IR), .pdmodel or .tflite")
    given = _model_description_given(args)
    model = open_model_file(args.path, config_from_values(given).model_flags())
    print(f"{model.path} ({model.format}, sha256 {model.sha256})")
    for line in model.description.lines():
        print(line)
    return EXIT_OK


def command_models(args: argparse.Namespace) -> int:
    from streamseg.models import DEFAULT_MODEL
    from streamseg.plugins import Plugins

    if args.name == "inspect":
        return _inspect_model_file(args)
    if args.path is not None:
        raise ConfigError(f"models takes one NAME, or inspect PATH; not {args.name} {args.path}")
    models = Plugins().registry.models  # the built-ins and installed plugins' models, as a run sees them
    if args.name:
        spec = models.get(args.name)
        print(f"{spec.name}: {spec.description}")
        if spec.weights is None:
            print("no trained weights ship with this build")
        else:
            print(json.dumps(spec.weights.card, indent=2))
        return EXIT_OK
    for spec in models:
        name = spec.name
        weights = spec.weights
        marker = "*" if name == DEFAULT_MODEL else " "
        if weights is None:
            trained = "no trained weights yet"
        else:
            # The card's own one-line verdict first: val mIoU flatters weights that trained on val or its drive.
            miou = weights.card.get("val_miou")
            trained = weights.card.get("summary") or (f"trained, CamVid val mIoU {100 * miou:.1f}" if miou is not None else "trained")
        print(f"{marker} {name:<16} {spec.description}  [{trained}]")
    print("* default model; `streamseg models NAME` shows its model card")
    return EXIT_OK


def command_export(args: argparse.Namespace) -> int:
    """Builds the engine-cache entries a backend needs ahead of time, so the first run starts at once.

    ``--backend onnx --out FILE`` writes the network as an ONNX file that describes itself (streamseg's
    metadata: classes, channel order, normalisation), so ``--model FILE`` runs it back with no flags.
    """
    import shutil

    from streamseg.backends import create_backend
    from streamseg.backends.engine_cache import EngineCache
    from streamseg.backends.export import cached_onnx
    from streamseg.config import DEFAULT_INPUT_SIZE, PRECISIONS, config_from_values
    from streamseg.label_sets import CAMVID as CAMVID_LABELS
    from streamseg.modelfile import FLAG_FIELDS, ModelFile
    from streamseg.pipeline.assemble import open_model
    from streamseg.plugins import Plugins

    if args.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {args.precision!r}")
    given = ("model", "weights", "input_size", "engine_dir", "calibration_data", *FLAG_FIELDS)
    config = config_from_values({name: getattr(args, name) for name in given if getattr(args, name, None) is not None})
    for name in ("weights", "engine_dir", "calibration_data"):
        _input_path(getattr(args, name), f"--{name.replace('_', '-')}")  # an empty path is refused, not read as "."
    copy_to = _output_file(args.out, "--out") if args.out is not None else None
    registry = Plugins().registry  # the model and backend by name, as a run finds them
    model, origin = open_model(config, registry)
    input_size = model.description.frame_size if isinstance(model, ModelFile) else config.input_size or DEFAULT_INPUT_SIZE
    options = config.backend_settings()
    if args.backend == "onnx":
        path = cached_onnx(model, input_size, options, EngineCache(options.engine_dir))
    else:
        with create_backend(args.backend, model, input_size, args.precision, options, registry.backends) as backend:
            path = getattr(backend, "engine_path", None)
            log.info("ready: %s (%s)", backend.describe(), origin)
    if path is not None:
        print(f"engine: {path}")
        if copy_to is not None:
            if args.backend == "onnx":
                _copy_described_onnx(path, copy_to, model.label_set if isinstance(model, ModelFile) else CAMVID_LABELS)
            else:
                shutil.copyfile(path, copy_to)
            log.info("copied to %s", copy_to)
    return EXIT_OK


def _copy_described_onnx(source: Path, destination: Path, label_set) -> None:
    """``source`` (in streamseg's contract: RGB in [0, 1], logits NCHW) written to ``destination`` with metadata saying so."""
    import onnx

    from streamseg.modelfile import STREAMSEG_KEY, streamseg_metadata

    model = onnx.load(str(source))
    for prop in [prop for prop in model.metadata_props if prop.key == STREAMSEG_KEY]:
        model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = STREAMSEG_KEY, streamseg_metadata(label_set)
    onnx.save(model, str(destination))


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
        print(f"{table:<16} {name:<15} {origin:<24} {description}")
    for failure in listing.failures:
        print(f"failed to load plugin {failure.entry_point} ({failure.target}, {failure.distribution}): {failure.error}")
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """argparse, with a one-line usage before an error: the whole option list (dozens of lines) would bury it."""

    def error(self, message: str):
        positionals = " ".join(
            action.metavar or (action.dest.upper() if action.nargs in (None, 1) else f"{action.dest.upper()}...")
            for action in self._get_positional_actions() if action.help is not argparse.SUPPRESS
        )
        usage = f"usage: {self.prog} [options]{' ' + positionals if positionals else ''} (--help lists the options)"
        self.exit(EXIT_USAGE, f"{usage}\n{self.prog}: error: {message}\n")


def _model_description_given(args: argparse.Namespace) -> dict:
    """The model-file description flags (--labels, --mean, ...) and --input-size that the command line gave."""
    from streamseg.modelfile import FLAG_FIELDS

    return {name: getattr(args, name) for name in (*FLAG_FIELDS, "input_size") if getattr(args, name) is not None}


def _add_model_description_options(parser: argparse.ArgumentParser) -> None:
    """The flags that describe a model file (--labels, --mean, ...), for a command that is not run or bench."""
    from streamseg.config import add_option_argument
    from streamseg.modelfile import FLAG_FIELDS

    for name in FLAG_FIELDS:
        add_option_argument(parser, name)


def build_parser() -> argparse.ArgumentParser:
    from streamseg.config import add_option_argument

    parser = _Parser(prog="streamseg", description="Real-time semantic segmentation of live video.")
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks of internal failures")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="segment a stream and write or serve the overlay")
    _add_run_options(run, "run")
    run.set_defaults(handler=command_run)

    bench = commands.add_parser("bench", help="model-only, naive-loop and pipelined fps in one run")
    _add_run_options(bench, "bench")
    bench.add_argument("--json", help="write the results here")
    bench.add_argument("--report", metavar="DIR", help="draw the results as PNG figures into this folder (needs streamseg[report])")
    bench.add_argument(
        "--rounds", type=int, default=1, help="alternate the measurements this many times and report the medians (default 1)"
    )
    bench.set_defaults(handler=command_bench)

    serve = commands.add_parser("serve", help="deprecated: streamseg run --ray ADDRESS (kept for one release)")
    _add_run_options(serve, "run")  # --ray and --replicas among them
    serve.set_defaults(handler=command_serve)

    evaluate = commands.add_parser(
        "eval", help="mIoU on a labelled folder: CamVid (val/, valannot/), Cityscapes (leftImg8bit/, gtFine/), or images/ and masks/"
    )
    evaluate.add_argument("data_dir")
    evaluate.add_argument(
        "--split", help="of CamVid or Cityscapes: val (default), train, test, or several joined by + (train+val); "
        "an images/ and masks/ folder has none",
    )
    evaluate.add_argument(
        "--hold-out-drive", dest="hold_out_drive", metavar="DRIVE",
        help="score only this drive's frames of --split (cross-drive validation: e.g. --split train+val --hold-out-drive 0006R0)",
    )
    # eval measures accuracy: the reference backend and precision unless asked for others.
    add_option_argument(evaluate, "model")
    add_option_argument(evaluate, "weights")
    add_option_argument(
        evaluate, "backend", default=None,
        help="torch, the reference, for a built-in model (default); auto for a model file; or any backend by name",
    )
    add_option_argument(evaluate, "precision", default="fp32")
    evaluate.add_argument("--scales", type=float, nargs="+", default=[1.0], help="multi-scale inference, e.g. 0.75 1 1.25")
    add_option_argument(evaluate, "crf", help="off (default) or sync: refine every frame")
    add_option_argument(evaluate, "crf_parameters")
    add_option_argument(evaluate, "max_frames")
    add_option_argument(evaluate, "calibration_data")  # unset: int8 uses the shipped model, as a run does
    add_option_argument(
        evaluate, "input_size", help="network input WIDTHxHEIGHT, times each of --scales (default: the frames' size; "
        "a model file's own)",
    )
    _add_model_description_options(evaluate)
    evaluate.add_argument("--json")
    evaluate.set_defaults(handler=command_eval)

    calibrate = commands.add_parser(
        "calibrate-confidence", help="fit the model's confidence calibration (temperature, curve, alert level) on a labelled folder",
    )
    calibrate.add_argument(
        "--data", required=True, metavar="DIR", help="labelled frames: CamVid (val/, valannot/), Cityscapes, or images/ and masks/",
    )
    calibrate.add_argument("--split", help="of CamVid or Cityscapes: val (default), train, or several joined by +")
    calibrate.add_argument("--hold-out-drive", dest="hold_out_drive", metavar="DRIVE", help="only this CamVid drive's frames of --split")
    add_option_argument(calibrate, "model")
    add_option_argument(calibrate, "weights")
    add_option_argument(calibrate, "backend", default=None, help="torch for a built-in model (default); auto for a model file")
    add_option_argument(calibrate, "precision", default="fp32")
    add_option_argument(calibrate, "input_size", help="network input WIDTHxHEIGHT (default: a run's, 480x360; a model file's own)")
    add_option_argument(calibrate, "max_frames")
    add_option_argument(calibrate, "confidence_threshold")
    _add_model_description_options(calibrate)
    calibrate.add_argument(
        "--out", metavar="FILE.json",
        help="also write {temperature, curve, context_share, alert_below, fitted_on} here (a model file's go into its sidecar)",
    )
    calibrate.add_argument("--json", help="write every figure here")
    calibrate.set_defaults(handler=command_calibrate_confidence)

    train = commands.add_parser("train", help="train a model on CamVid (resumes from OUT/last.pt)")
    _add_train_arguments(train)
    train.set_defaults(handler=command_train)

    export = commands.add_parser("export", help="build a backend's compiled engine ahead of time (into the engine cache)")
    add_option_argument(export, "model")
    add_option_argument(export, "weights")
    # Not the run's --backend: "onnx" (the export alone) is one more choice, and there is no auto.
    export.add_argument("--backend", required=True, help="onnx, onnxruntime, openvino, tensorrt, cuda")
    add_option_argument(export, "precision", default="fp32")  # an artifact of a precision asked for, not auto's pick
    add_option_argument(export, "input_size")
    add_option_argument(export, "engine_dir", default=None)  # None: the declared default, resolved by command_export
    add_option_argument(export, "calibration_data")
    _add_model_description_options(export)
    export.add_argument("--out", help="also copy the artifact (e.g. the .onnx file) here")
    export.set_defaults(handler=command_export)

    models = commands.add_parser(
        "models", help="list the models, show one model's card, or `models inspect PATH`: what streamseg assumes about a model file"
    )
    models.add_argument("name", nargs="?", help="a registered model, or inspect")
    models.add_argument("path", nargs="?", help="with inspect: the model file")
    add_option_argument(models, "input_size", default=None)
    _add_model_description_options(models)
    models.set_defaults(handler=command_models)

    plugins = commands.add_parser("plugins", help="list models, backends, flow estimators, refiners, sources and sinks, with plugins")
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
    except StreamsegError as error:  # the class says how to exit; the message is only shown
        log.error("%s", error)
        return error.exit_code
    except KeyboardInterrupt as interrupt:  # before or after a run: nothing was in flight
        name = getattr(interrupt, "signal_name", None)
        log.info("interrupted%s", f" ({name})" if name else "")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
