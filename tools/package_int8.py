"""Quantises every model that ships with weights to int8, once, and ships the result beside the weights.

    python tools/package_int8.py [--model erfnet ...] [--data ../shared/data/camvid]

For each model: NNCF post-training quantisation of the OpenVINO IR and static QDQ quantisation
for ONNX Runtime, both calibrated on CamVid train frames at the network's default input size
(480x360), written to ``streamseg/weights/int8/<model>-<kind>/`` as engine-cache entries (a
manifest with the key, which holds the weights' SHA-256, and every file's SHA-256). Both are made
from the export with a free batch dimension, so that ONNX Runtime runs a batch of frames from
several streams in one call (OpenVINO runs them frame by frame, measured faster on a CPU); the
tool refuses to ship one that does not. Run it again whenever the shipped
weights change: entries for the old weights are replaced, and a backend never uses an entry
whose weights hash or files do not match (``streamseg/backends/shipped.py``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from streamseg.backends import BackendOptions, create_backend
from streamseg.backends.shipped import SHIPPED_DIR, shipped_entry_dir
from streamseg.config import DEFAULT_INPUT_SIZE
from streamseg.observability.logs import configure_logging
from streamseg.models import MODELS, load_model

# backend name -> the engine-cache kind of its int8 artifact
KINDS = {"openvino": "openvino-int8", "onnxruntime": "ort-int8"}


def package(model_name: str, data: Path, input_size: tuple[int, int]) -> None:
    model, _ = load_model(model_name, None)
    with tempfile.TemporaryDirectory(prefix="streamseg-int8-") as scratch:
        options = BackendOptions(engine_dir=Path(scratch), calibration_data=data, model_name=model_name)
        for backend_name, kind in KINDS.items():
            with create_backend(backend_name, model, input_size, "int8", options) as backend:
                built = Path(backend.engine_path).parent
                if not backend.free_batch:
                    raise SystemExit(f"{model_name}: the {kind} model has a fixed batch; it would run batches frame by frame")
            target = shipped_entry_dir(model_name, kind)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(built, target)
            target.chmod(0o755)  # the scratch folder was private; an installed package is read by everyone
            size = sum(path.stat().st_size for path in target.iterdir()) / 1e6
            print(f"{model_name}: {kind} -> {target.relative_to(SHIPPED_DIR.parents[2])} ({size:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shipped = [name for name in MODELS.names() if MODELS.get(name).weights is not None]
    parser.add_argument("--model", nargs="+", default=shipped, help=f"models to quantise (default: {' '.join(shipped)})")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/camvid"), help="CamVid folder with train/*.png")
    args = parser.parse_args()
    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.model:
        package(name, args.data, DEFAULT_INPUT_SIZE)


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    main()
