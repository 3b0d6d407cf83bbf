# make demo: install what is missing, then segment the built-in demo scene into out/demo.mp4
# make test: install what the tests need, then run them
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install test-deps bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned: a looser requirement pulls the CUDA build (gigabytes) instead of the local CPU wheel.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,crf,openvino]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/streamseg run demo --max-frames 150 --out out/demo.mp4 --stats out/demo.jsonl
	@echo "overlay video: $(CURDIR)/out/demo.mp4"

# The live tests need real servers (GStreamer RTSP, Prometheus, Chromium, ffmpeg) from Debian's packages.
test: install
	bash tools/install_test_deps.sh
	$(PY) -m pytest -q

bench: install
	$(VENV)/bin/streamseg bench ../shared/data/video/solidWhiteRight.mp4 --json out/bench.json

clean:
	rm -rf out .pytest_cache
