"""What streamseg.cpu changes in the process, checked in a fresh interpreter each time (malloc's settings are process-wide)."""

import json
import statistics
import subprocess
import sys

import pytest

# Trains erfnet for a few steps on random crops, as the trainer does on a CPU (bf16 where it is native), and prints
# the pages faulted in by each step after four to warm up, and the process's peak resident memory.
_TRAINING_STEPS = """
import json, resource, sys, torch
from streamseg.cpu import cpu_has_native_bf16, keep_freed_memory
from streamseg.models import MODELS
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
model = MODELS.get("erfnet").build().train()
optimizer = torch.optim.Adam(model.parameters())
images, labels = torch.rand(8, 3, 160, 160), torch.randint(0, 11, (8, 160, 160))
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_native_bf16()):
        logits = model(images)
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
for _ in range(4):
    step()
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"faults": faults, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _train(mode: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _TRAINING_STEPS, mode], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
@pytest.mark.slow
def test_training_steps_reuse_freed_memory_instead_of_faulting_it_in_again():
    default, kept = _train("default"), _train("keep")
    # By default most steps map their activations afresh (a median of 8000-20000 pages a step); kept, most steps
    # fault in nothing. The odd step of either may differ (the heap grows, or a freed block happens to be
    # reused), so the medians are compared: six steps' sums once came to a ratio of only 7.7.
    assert statistics.median(default["faults"]) > 10 * max(statistics.median(kept["faults"]), 100), (default, kept)
    # What is kept is what the step needs again, not more.
    assert kept["peak_kb"] < 1.1 * default["peak_kb"], (default, kept)
