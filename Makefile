# make demo: install what is missing, then segment the built-in demo scene into out/demo.mp4
# make test: install what the tests need, then run them all
# make test-fast: the inner loop, every test but the live, ray, slow and gpu ones (markers in pyproject.toml)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install test-deps bench clean gpu-wheels

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned: a looser requirement pulls the CUDA build (gigabytes) instead of the local CPU wheel.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,crf,openvino,ros]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/streamseg run demo --max-frames 150 --out out/demo.mp4 --stats out/demo.jsonl
	@echo "overlay video: $(CURDIR)/out/demo.mp4"

# pytest-xdist: one worker per core, each test file on one worker (a module's fixtures, a ray module's head, are made once).
PARALLEL := -n auto --dist loadfile

# The live tests need real servers (GStreamer RTSP, Prometheus, Chromium, ffmpeg) from Debian's packages.
# Ray (the [ray] extra) is installed for its tests; where it cannot be, they skip and say why.
test: install
	bash tools/install_test_deps.sh
	$(PY) -m pip install -q -e '.[ray]' || echo "Ray could not be installed: the run --ray tests will skip"
	$(PY) -m pytest -q $(PARALLEL)

# No Debian packages and no Ray: the tests that need them are the ones left out.
test-fast: install
	$(PY) -m pytest -q $(PARALLEL) -m "not live and not ray and not slow and not gpu"

bench: install
	$(VENV)/bin/streamseg bench ../shared/data/video/solidWhiteRight.mp4 --json out/bench.json

# What tools/gpu_proof.sh installs on the GPU machine (Python 3.12, no network there), in the git-ignored .whl/:
# Cython 0.29.36 (pydensecrf2's setup.py pins it) and pydensecrf2's source (PyPI has no wheel of it), plus the
# data the proof reads (CamVid val as JPEG q90 with PNG labels, the road video) when ../shared/data has them.
# PyAV is left out: its wheel (35 MB) does not fit in what a device run may carry; the proof decodes with OpenCV.
GPU_WHEEL_FLAGS := --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64

gpu-wheels: install
	rm -rf .whl
	$(PY) -m pip download -q $(GPU_WHEEL_FLAGS) -d .whl Cython==0.29.36
	$(PY) -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d .whl pydensecrf2==1.1
	$(PY) tools/gpu_proof.py --pack-into .whl
	du -sh .whl

clean:
	rm -rf out .pytest_cache
