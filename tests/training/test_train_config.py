"""``streamseg train`` settings are checked before the model is built or a frame is read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamseg.cpu import cpu_has_native_bf16
from streamseg.errors import ConfigError, OutputError
from streamseg.training.trainer import TrainConfig, Trainer


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": 0}, "epochs must be at least 1, not 0"),
        ({"batch_size": 0}, "batch size must be at least 1"),
        ({"eval_every": 0}, "eval_every must be at least 1"),
        ({"threads": -1}, "threads must be 0"),
        ({"learning_rate": float("nan")}, "learning rate must be a positive number"),
        ({"learning_rate": 0.0}, "learning rate must be a positive number"),
        ({"crop": (4, 320)}, "crop sides must be in 8..4096"),
        ({"freeze_encoder_epochs": -1}, "freeze_encoder_epochs cannot be negative"),
        ({"device": "abc"}, "unknown device 'abc'"),
        ({"device": "meta"}, "training runs on cpu or cuda"),
    ],
)
def test_bad_settings_are_refused_before_any_work(tmp_path, change, message):
    out = tmp_path / "run"
    config = TrainConfig(model="erfnet-half", data=tmp_path / "no-data", out=out, **change)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Trainer(config)
    assert not out.exists()  # refused before the run folder was made


def test_a_batch_larger_than_the_training_set(tiny_camvid, tmp_path):
    config = TrainConfig(model="erfnet-half", data=tiny_camvid, out=tmp_path / "run", batch_size=5, crop=(32, 32))
    with pytest.raises(ConfigError, match="batch size 5 is larger than the 4 train frames"):
        Trainer(config)


def test_the_run_folder_is_checked_before_the_data_is_read(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out, message in ((a_file, "is a file"), (a_file / "run", "cannot create the run folder")):
        with pytest.raises(OutputError, match=message):
            Trainer(TrainConfig(model="erfnet-half", data=Path("/no/such/data"), out=out))


def test_bf16_training_on_a_cpu_is_refused_where_it_would_only_be_emulated(tmp_path):
    # Emulated bf16 trained 10x slower than fp32 (an AVX2-only AMD EPYC): a user asking for it wants speed.
    config = TrainConfig(model="erfnet-half", data=tmp_path / "no-data", out=tmp_path / "run", bf16=True)
    if cpu_has_native_bf16():
        assert config.validate() is config
    else:
        with pytest.raises(ConfigError, match=r"--bf16: bf16 needs a CPU with native bf16 .* far slower than fp32"):
            config.validate()
