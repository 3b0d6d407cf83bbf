"""What streamseg.cpu changes in the process, checked in a fresh interpreter each time (malloc's settings are process-wide)."""

import json
import subprocess
import sys

import pytest

# Trains erfnet for a few steps on random crops, as the trainer does on a CPU (bf16 where it is native), and prints
# the pages faulted in by the last six steps and the process's peak resident memory.
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
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    step()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"faults": usage.ru_minflt - before, "peak_kb": usage.ru_maxrss}))
"""


def _train(mode: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _TRAINING_STEPS, mode], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
@pytest.mark.slow
def test_training_steps_reuse_freed_memory_instead_of_faulting_it_in_again():
    default, kept = _train("default"), _train("keep")
    # By default each step's activations are mapped afresh (about 16000 pages a step in bf16, 17000 in fp32);
    # kept, the six steps fault in 5000-8000 pages in all.
    assert default["faults"] > 10 * max(kept["faults"], 100), (default, kept)
    # What is kept is what the step needs again, not more.
    assert kept["peak_kb"] < 1.1 * default["peak_kb"], (default, kept)
