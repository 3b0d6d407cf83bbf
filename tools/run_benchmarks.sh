#!/usr/bin/env bash
# Every CPU figure in BENCHMARKS.md, in one go, into benchmarks/. Run from the project root with
# ../shared/data present, on a quiet machine (nothing else running: the figures are ratios, but
# a busy second core still distorts them). Takes about 20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SS=.venv/bin/streamseg
DATA=../shared/data
VIDEO=$DATA/video/solidWhiteRight.mp4
OUT=benchmarks
mkdir -p "$OUT"
step() { echo; echo "== $*"; }

step "quality and parity of every CPU backend on CamVid val"
$PY tools/parity.py --model erfnet --json $OUT/parity-erfnet.json \
    --runs torch:fp32 torch:bf16 onnxruntime:fp32 onnxruntime:int8 openvino:fp32 openvino:bf16 openvino:int8

step "multi-scale inference"
$SS eval $DATA/camvid --model erfnet --backend openvino --precision fp32 --json $OUT/eval-erfnet-1x.json
$SS eval $DATA/camvid --model erfnet --backend openvino --precision fp32 --scales 0.75 1 1.25 --json $OUT/eval-erfnet-multiscale.json

step "model-only fps per backend"
$PY tools/bench_backends.py --model erfnet --rounds 3 --seconds 4 --calibration-data $DATA/camvid | tee $OUT/backends-erfnet.txt

step "model only vs naive loop vs pipeline, per backend, on solidWhiteRight"
for run in torch:fp32 torch:bf16 onnxruntime:fp32 onnxruntime:int8 openvino:fp32 openvino:bf16 openvino:int8; do
    $SS bench $VIDEO --backend "${run%%:*}" --precision "${run##*:}" --calibration-data $DATA/camvid \
        --json "$OUT/bench-${run%%:*}-${run##*:}.json"
done

step "CRF: tuning on val, then sync evaluation with and without it"
$PY tools/tune_crf.py --model erfnet --frames 25 --out streamseg/weights/erfnet-crf.yaml \
    --grid bilateral_sxy=30,60 --grid bilateral_srgb=3,5,10 --grid bilateral_compat=3,5
$SS eval $DATA/camvid --model erfnet --backend openvino --precision fp32 --crf sync \
    --json $OUT/eval-erfnet-crf.json
$PY tools/bench_crf.py --model erfnet --frames 10 | tee $OUT/crf-erfnet.txt

step "optional stages against the plain pipeline, same run"
$PY tools/bench_modes.py $VIDEO --rounds 2 --json $OUT/modes-erfnet.json \
    --mode "" --mode "--crf async" --mode "--flow dis" --mode "--key-every 3"

step "temporal consistency on real video"
$PY tools/temporal_consistency.py --model erfnet --keyframe 3 --json $OUT/temporal-erfnet.json

step "optical flow on held-out generated pairs"
$PY tools/flow_epe.py --pairs 50 --json $OUT/flow-epe.json
