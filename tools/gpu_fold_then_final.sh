#!/usr/bin/env bash
# Recipe choice and the final model on a GPU machine in one call (issue: generalisation).
#
# 1. Trains each recipe in RECIPES_TO_TRY at once on the one GPU, without drive HOLD_OUT (default 0006R0), each in
#    FOLD_BUDGET_S seconds (or, with FOLD_EPOCHS, each for exactly that many epochs: recipes compared at equal
#    epochs rather than equal time), and scores each on the held-out drive: the cross-drive fold.
#    At the same time it trains the yardstick, REFERENCE: the recipe and schedule the shipped model had before
#    any of this (2026-11-22, on a CPU: baseline, 100 epochs, batch 8, Adam 1e-3), on the same fold, so that every
#    candidate is quoted against today's recipe measured the same way. REFERENCE="" leaves it out.
# 2. Picks the recipe with the best held-out mIoU and trains it on train+val (all 468 frames) for the same number
#    of epochs: a fixed schedule chosen on the fold. No checkpoint is picked by a score; the last epoch ships.
#
# Here (once): python tools/gpu_train.py --pack-into .camvid      (CamVid train+val as JPEG q90 + PNG labels, 26 MB)
# There:       run  command: bash tools/gpu_fold_then_final.sh "$OUT"   carry: [".camvid"]
# It writes OUT/folds.tar (each fold's train.json and log.jsonl), the chosen fold's and the reference's weights
# (OUT/fold-RECIPE-MODEL.pt, OUT/fold-reference-MODEL.pt) and OUT/final.tar (MODEL.pt, train.json, log.jsonl,
# config.json): few files, none over 16 MiB, since the device tool brings back at most eight of at most that size.
# Dry run anywhere (CPU, a few 32x32 crops; tests/tools/test_gpu_train.py runs it): ... OUT --dry-run --data CAMVID
set -u -o pipefail

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash tools/gpu_fold_then_final.sh OUT_DIR [--dry-run] [--data CAMVID]" >&2
    exit 2
fi
out=$1
shift
data=.camvid
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --data) data=$2; shift 2 ;;
        --dry-run) extra+=(--dry-run); shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
python=${PYTHON:-python3}
model=${MODEL:-erfnet}
hold_out=${HOLD_OUT:-0006R0}
recipes=${RECIPES_TO_TRY:-baseline road road-ce}
fold_budget=${FOLD_BUDGET_S:-170}
final_budget=${FINAL_BUDGET_S:-120}
fold_epochs=()
[ -n "${FOLD_EPOCHS:-}" ] && fold_epochs=(--epochs "$FOLD_EPOCHS")
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.." || exit 2
work=$(mktemp -d)
export PYTHONUNBUFFERED=1
# Several trainers share the machine's cores (augmentation draws run there): a few threads each, not all of them.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

for name in $recipes; do
    timeout $((fold_budget + 60)) "$python" tools/gpu_train.py "$work/fold-$name" --data "$data" --model "$model" \
        --recipe "$name" --hold-out-drive "$hold_out" --budget-s "$fold_budget" "${fold_epochs[@]}" "${extra[@]}" \
        >"$work/fold-$name.log" 2>&1 &
done
reference=${REFERENCE-"--recipe baseline --epochs 100 --batch-size 8 --lr 1e-3"}
if [ -n "$reference" ]; then
    # shellcheck disable=SC2086  # REFERENCE is a list of options
    timeout $((fold_budget + 60)) "$python" tools/gpu_train.py "$work/fold-reference" --data "$data" --model "$model" \
        --hold-out-drive "$hold_out" --budget-s "$fold_budget" $reference "${extra[@]}" >"$work/fold-reference.log" 2>&1 &
fi
wait
for name in $recipes ${reference:+reference}; do
    echo "== fold $name"
    tail -n 3 "$work/fold-$name.log"
done

# The recipe with the best held-out mIoU, and its epochs.
read -r best epochs < <("$python" - "$work" $recipes <<'PY'
import json, sys
from pathlib import Path
work, names = Path(sys.argv[1]), sys.argv[2:]
scores = {}
for name in names:
    report = Path(work, f"fold-{name}", "train.json")
    if report.exists():
        record = json.loads(report.read_text())
        scores[name] = (record.get("held_out_miou", -1.0), record["epochs"])
        print(f"fold {name}: {record['epochs']} epochs, held-out mIoU {100 * scores[name][0]:.1f}", file=sys.stderr)
reference = Path(work, "fold-reference", "train.json")
if reference.exists():
    record = json.loads(reference.read_text())
    print(f"fold reference (today's recipe): {record['epochs']} epochs, held-out mIoU {100 * record.get('held_out_miou', -1):.1f}",
          file=sys.stderr)
if scores:
    name = max(scores, key=lambda key: scores[key][0])
    print(name, scores[name][1])
PY
)
if [ -z "${best:-}" ]; then
    echo "no fold finished; see the logs" >&2
    tar -cf "$out/folds.tar" -C "$work" . 2>/dev/null
    exit 1
fi
echo "chosen on the fold: recipe $best, $epochs epochs"
# The weights travel beside the tar, one file each: the device tool brings back no file over 16 MiB.
(cd "$work" && tar -cf "$out/folds.tar" fold-*.log fold-*/train.json fold-*/run/log.jsonl)
cp "$work/fold-$best/$model.pt" "$out/fold-$best-$model.pt"
# The yardstick's weights too, to be rescored here the same way as the winner's.
[ -f "$work/fold-reference/$model.pt" ] && cp "$work/fold-reference/$model.pt" "$out/fold-reference-$model.pt"

timeout $((final_budget + 60)) "$python" tools/gpu_train.py "$work/final" --data "$data" --model "$model" \
    --recipe "$best" --epochs "$epochs" --budget-s "$final_budget" "${extra[@]}" 2>&1 | tail -n 5
status=$?
(cd "$work" && tar -cf "$out/final.tar" final/train.json final/run/log.jsonl final/run/config.json "final/$model.pt")
rm -rf "$work"
exit $status
