"""Training speed on a CPU with and without ``keep_freed_memory``, in fresh processes, alternating.

Each process trains erfnet as ``tools/gpu_train.py --recipe batch64`` does on a CPU (a batch of 64
random 320x320 crops, channels-last, bf16 autocast, Adam) for one untimed and three timed steps,
and prints images per second. Usage: python benchmarks/training-malloc/ab.py [--rounds N] [--json F]
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
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
model = MODELS.get("erfnet").build().to(memory_format=torch.channels_last).train()
optimizer = torch.optim.Adam(model.parameters(), lr=4e-3)
images = torch.rand(64, 3, 320, 320).contiguous(memory_format=torch.channels_last)
labels = torch.randint(0, 11, (64, 320, 320))
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
step()
started = time.perf_counter()
for _ in range(3):
    step()
print(json.dumps({"images_per_s": 3 * 64 / (time.perf_counter() - started)}))
"""


def images_per_second(mode: str) -> float:
    result = subprocess.run([sys.executable, "-c", _STEPS, mode], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="where to write every round's figures")
    args = parser.parse_args()
    rounds = []
    for index in range(args.rounds):
        # Alternating which goes first, so a host getting busier or quieter favours neither.
        order = ("default", "keep") if index % 2 == 0 else ("keep", "default")
        figures = {mode: images_per_second(mode) for mode in order}
        figures["ratio"] = figures["keep"] / figures["default"]
        rounds.append(figures)
        print(f"round {index + 1}: default {figures['default']:.2f} img/s, keep {figures['keep']:.2f} img/s, ratio {figures['ratio']:.2f}", flush=True)
    print(f"median ratio {statistics.median(r['ratio'] for r in rounds):.2f}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"rounds": rounds}, file, indent=1)


if __name__ == "__main__":
    main()
