#!/usr/bin/env bash
# The GPU proof in one command: install what the GPU machine lacks from .whl/, then tools/gpu_proof.py.
#
# 1. Here (network):  make gpu-wheels      # fills the git-ignored .whl/ (about 11 MB): Cython 0.29.36 wheel,
#                                          # pydensecrf2 sdist, CamVid val as JPEG q90 + PNG labels, the road video
# 2. On the GPU machine, from the repo root, with the device tool (8 minutes at most; the JSON is written after
#    every step, so it is there even if the run is stopped):
#       run  command: bash tools/gpu_proof.sh "$OUT"   carry: [".whl"]   timeout_s: 540
#    It writes $OUT/gpu_proof.json (every figure, device, versions, per-step wall time), $OUT/pytest.log,
#    $OUT/install.log and $OUT/install.tsv.
#    With the trainer in the same call (2026-11-28), carry the trainer's .camvid (it holds val too) and only
#    .whl's Cython wheel, pydensecrf2 sdist and video/, and pass --data .camvid: .whl/camvid beside .camvid
#    would not fit in the 64 MiB a call carries (BENCHMARKS.md, GPU proof on an NVIDIA H200).
# Dry run anywhere (CPU, tiny sizes; `make test` runs it): bash tools/gpu_proof.sh OUT_DIR --dry-run [--data DIR]
#
# The GPU machine has Python 3.12 with torch, Triton, onnxruntime, OpenCV, pyyaml, pytest and prometheus-client,
# and no network. It lacks pydensecrf2 (PyPI has only its source, so it is built there, with the carried Cython
# that its setup.py pins) and PyAV (its 35 MB wheel does not fit in what a run may carry; the proof decodes with
# OpenCV instead). streamseg itself runs from this checkout through PYTHONPATH: its pins (torch 2.13) do not apply.
# Arguments after OUT_DIR go to tools/gpu_proof.py. PYTHON (default python3) and GPU_PROOF_BUDGET_S (default
# 470: the whole run, the install included) can be set.
set -u -o pipefail

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash tools/gpu_proof.sh OUT_DIR [--dry-run] [tools/gpu_proof.py options]" >&2
    exit 2
fi
out_dir=$1
shift
python=${PYTHON:-python3}
budget_s=${GPU_PROOF_BUDGET_S:-470}
started=$(date +%s)
dry_run=0
for argument in "$@"; do
    [ "$argument" = "--dry-run" ] && dry_run=1
done

mkdir -p "$out_dir" || exit 2
out_dir=$(cd "$out_dir" && pwd) # absolute before moving to the repo root, where the proof runs
cd "$(dirname "$0")/.." || exit 2
record="$out_dir/install.tsv"
log="$out_dir/install.log"
: >"$record"
: >"$log"
site=/tmp/gpu-proof-site        # what the proof imports: pydensecrf
build_site=/tmp/gpu-proof-build # what only the pydensecrf build needs: Cython 0.29.36

# One line of the record that tools/gpu_proof.py reads back: item, status, seconds, detail.
note() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$record"; }

# Runs "$@" with its output in the log, noting item $1's status and seconds.
install_step() {
    local item=$1 step_started status
    shift
    step_started=$(date +%s)
    echo "== $item: $*" >>"$log"
    if timeout 240 "$@" >>"$log" 2>&1; then status=ok; else status=failed; fi
    note "$item" "$status" "$(($(date +%s) - step_started))" "$*"
    [ "$status" = ok ]
}

if [ "$dry_run" = 1 ]; then
    note install skipped 0 "dry run: installs nothing and uses this environment's packages"
elif [ ! -d .whl ]; then
    note install skipped 0 "no .whl/ folder here (make gpu-wheels, and carry .whl)"
elif "$python" -c "import pydensecrf.densecrf" 2>/dev/null; then
    note pydensecrf2 skipped 0 "already importable"
else
    mkdir -p "$site" "$build_site"
    cython_wheels=(.whl/Cython-*.whl)
    sdists=(.whl/pydensecrf2-*.tar.gz)
    if [ -e "${cython_wheels[0]}" ] && [ -e "${sdists[0]}" ]; then
        install_step cython "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$build_site" "${cython_wheels[@]}" &&
            # No build isolation (it would fetch build requirements): setuptools, wheel and numpy are the machine's,
            # and setup.py's setup_requires (cython==0.29.36) is met by the carried wheel on PYTHONPATH.
            install_step pydensecrf2 env PYTHONPATH="$build_site${PYTHONPATH:+:$PYTHONPATH}" \
                "$python" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
                --target "$site" "${sdists[0]}"
    else
        note pydensecrf2 failed 0 ".whl/ lacks Cython-*.whl or pydensecrf2-*.tar.gz (make gpu-wheels)"
    fi
fi

export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
remaining=$((budget_s - ($(date +%s) - started)))
exec "$python" tools/gpu_proof.py --out "$out_dir" --budget-s "$remaining" --install-record "$record" "$@"
