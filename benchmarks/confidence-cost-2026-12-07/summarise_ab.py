"""The off/on pairs an ab_cost.sh wrote (OUT/{off,on}-N.json, N = 1..ROUNDS): each side's pipelined fps and CPU ms a
frame, and pair by pair the fps ratio and the extra CPU, with their medians.

    python benchmarks/confidence-cost-2026-12-07/summarise_ab.py OUT ROUNDS
"""
import json
import statistics
import sys

out, rounds = sys.argv[1], int(sys.argv[2])
runs = {side: [json.load(open(f"{out}/{side}-{r}.json"))["pipelined"] for r in range(1, rounds + 1)] for side in ("off", "on")}
for key in ("fps", "cpu_ms_per_frame"):
    print(key, {side: [run[key] for run in runs[side]] for side in runs})
ratios = [on["fps"] / off["fps"] for off, on in zip(runs["off"], runs["on"])]
extra = [on["cpu_ms_per_frame"] - off["cpu_ms_per_frame"] for off, on in zip(runs["off"], runs["on"])]
print(f"pipelined fps ratio on/off, pair by pair: {[round(r, 3) for r in ratios]}, median {statistics.median(ratios):.3f}")
print(f"CPU ms per frame on - off, pair by pair: {[round(e, 2) for e in extra]}, median {statistics.median(extra):+.2f}")
