"""A few training steps on generated pairs: checkpoints, resume, held-out EPE and export."""

import io
import json
from pathlib import Path

import pytest
import torch

from streamseg.cpu import emulated_bf16_reason
from streamseg.errors import ConfigError
from streamseg.temporal.flownet_estimator import load_flownet
from streamseg.temporal.training import FlowNetTrainer, FlowTrainConfig, export_weights

CAMVID = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "camvid"


@pytest.fixture
def camvid_root() -> Path:
    if not (CAMVID / "train").is_dir():
        pytest.skip(f"CamVid is not at {CAMVID} (../shared/data is absent in a fresh clone)")
    return CAMVID


@pytest.mark.slow
def test_training_logs_resumes_and_exports(camvid_root, tmp_path):
    config = FlowTrainConfig(
        camvid=camvid_root, out=tmp_path / "run", steps=2, batch_size=2, size=(64, 96),
        eval_every=2, eval_pairs=2, checkpoint_every=1, threads=2,
    )
    best = FlowNetTrainer(config, progress_stream=io.StringIO()).run()
    records = [json.loads(line) for line in (config.out / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [2]
    assert best == pytest.approx(records[0]["heldout_epe"])
    assert {"last.pt", "best.pt", "config.json"} <= {path.name for path in config.out.iterdir()}

    config.steps = 3
    resumed = FlowNetTrainer(config, progress_stream=io.StringIO())
    assert resumed.step == 2
    resumed.run()
    assert torch.load(config.out / "last.pt", weights_only=True)["step"] == 3

    export = tmp_path / "weights"
    export.mkdir()
    export_weights(config.out / "best.pt", export)
    card = json.loads((export / "flownet.json").read_text())
    assert card["width"] == 0.25 and card["training"]["size"] == [64, 96] and "backward flow" in card["output"]
    load_flownet(export / "flownet.pt")


@pytest.mark.skipif(emulated_bf16_reason() is None, reason="this CPU has native bf16, so --bf16 is allowed here")
def test_bf16_is_refused_before_any_work_where_the_cpu_would_only_emulate_it(tmp_path):
    config = FlowTrainConfig(camvid=tmp_path / "no-camvid", out=tmp_path / "run", bf16=True)
    with pytest.raises(ConfigError, match=r"--bf16: bf16 needs a CPU with native bf16"):
        FlowNetTrainer(config, progress_stream=io.StringIO())
    assert not config.out.exists()
