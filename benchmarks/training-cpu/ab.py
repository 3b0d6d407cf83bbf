"""Training speed on a CPU, A against B, in fresh processes, alternating.

Each process trains erfnet as ``tools/gpu_train.py --recipe batch64`` does on a CPU (a batch of
random 320x320 crops, channels-last, Adam) for one untimed and ``--steps`` timed steps, and prints
images per second. ``--compare malloc`` (the default): bf16 autocast, with and without
``keep_freed_memory``. ``--compare bf16``: freed memory kept, fp32 against bf16 autocast (on a CPU
without native bf16 the autocast is emulated). Usage:

    python benchmarks/training-cpu/ab.py [--compare malloc|bf16] [--batch 64] [--steps 3] [--rounds N] [--json F]
"""

import argparse
import json
import statistics
import subprocess
import sys

_STEPS = """
import json, sys, time, torch
from streamseg.cpu import keep_freed_memory
from streamseg.models import MODELS
keep, precision, batch, steps = sys.argv[1] == "keep", sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if keep:
    assert keep_freed_memory()
torch.manual_seed(0)
model = MODELS.get("erfnet").build().to(memory_format=torch.channels_last).train()
optimizer = torch.optim.Adam(model.parameters(), lr=4e-3)
images = torch.rand(batch, 3, 320, 320).contiguous(memory_format=torch.channels_last)
labels = torch.randint(0, 11, (batch, 320, 320))
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(images)
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
step()
started = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"images_per_s": steps * batch / (time.perf_counter() - started)}))
"""

# --compare: (name of A, its malloc mode and precision), then B's; the ratio is B over A.
COMPARISONS = {
    "malloc": (("default", "default", "bf16"), ("keep", "keep", "bf16")),
    "bf16": (("fp32", "keep", "fp32"), ("bf16", "keep", "bf16")),
}


def images_per_second(malloc: str, precision: str, batch: int, steps: int) -> float:
    command = [sys.executable, "-c", _STEPS, malloc, precision, str(batch), str(steps)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="malloc")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process, after one untimed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="where to write every round's figures")
    args = parser.parse_args()
    first, second = COMPARISONS[args.compare]
    rounds = []
    for index in range(args.rounds):
        # Alternating which goes first, so a host getting busier or quieter favours neither.
        order = (first, second) if index % 2 == 0 else (second, first)
        figures = {name: images_per_second(malloc, precision, args.batch, args.steps) for name, malloc, precision in order}
        figures["ratio"] = figures[second[0]] / figures[first[0]]
        rounds.append(figures)
        print(
            f"round {index + 1}: {first[0]} {figures[first[0]]:.2f} img/s, {second[0]} {figures[second[0]]:.2f} img/s, "
            f"ratio {figures['ratio']:.2f}",
            flush=True,
        )
    print(f"median ratio {statistics.median(r['ratio'] for r in rounds):.2f}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"compare": args.compare, "batch": args.batch, "steps": args.steps, "rounds": rounds}, file, indent=1)


if __name__ == "__main__":
    main()
