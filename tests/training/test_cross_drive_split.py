"""Cross-drive validation: a held-out drive's frames never reach training, checked on file names."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.data.camvid import CamVid, list_split
from streamseg.errors import InputError
from streamseg.training.trainer import TrainConfig, Trainer

# Frame names as CamVid spells them: <drive>_<frame>.png, the drive shared across train and val.
NAMES = {
    "train": ["0001TP_006690", "0001TP_006720", "0006R0_f01260", "0006R0_f01290", "0016E5_00390", "0016E5_00420"],
    "val": ["0016E5_07959", "0016E5_07961", "0006R0_f02000"],
}


@pytest.fixture
def drives_camvid(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for split, names in NAMES.items():
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for name in names:
            cv2.imwrite(str(tmp_path / split / f"{name}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
            cv2.imwrite(str(tmp_path / f"{split}annot" / f"{name}.png"), rng.integers(0, 12, (48, 64), dtype=np.uint8))
    return tmp_path


def _names(dataset: CamVid) -> set[str]:
    return {sample.image_path.stem for sample in dataset.samples}


def test_the_held_out_drive_is_scored_and_never_trained_on(drives_camvid, tmp_path):
    config = TrainConfig(
        model="erfnet-half", data=drives_camvid, out=tmp_path / "run", batch_size=2, crop=(32, 32),
        train_split="train+val", hold_out_drive="0006R0",
    )
    trainer = Trainer(config)
    everything = set(NAMES["train"] + NAMES["val"])
    held_out = {name for name in everything if name.startswith("0006R0_")}
    assert _names(trainer.held_out_set) == held_out  # from train and val alike
    assert _names(trainer.train_set) == everything - held_out
    assert len(trainer.images) == len(everything - held_out)


def test_training_on_val_without_a_held_out_drive_scores_nothing(drives_camvid, tmp_path):
    trainer = Trainer(TrainConfig(model="erfnet-half", data=drives_camvid, out=tmp_path / "run", batch_size=2,
                                  crop=(32, 32), train_split="train+val", epochs=1, max_batches=1))
    assert trainer.held_out_set is None
    trainer.run()
    assert (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "run" / "best.pt").exists()


def test_an_unknown_drive_is_refused_with_the_known_ones(drives_camvid):
    with pytest.raises(InputError, match="no frames of drive 'Seq05VD' here; the drives are 0001TP, 0006R0, 0016E5"):
        CamVid(drives_camvid, "train+val", exclude_drive="Seq05VD")


def test_joined_splits_and_bad_split_names(drives_camvid):
    assert len(list_split(drives_camvid, "train+val")) == 9
    for bad in ("train+train", "train+", "trainval", ""):
        with pytest.raises(InputError, match="unknown split"):
            list_split(drives_camvid, bad)


@pytest.mark.slow
def test_on_camvid_the_fold_holds_every_0006R0_frame_out(camvid, tmp_path):
    training = CamVid(camvid, "train+val", exclude_drive="0006R0")
    held_out = list_split(camvid, "train+val")
    held_out = [sample for sample in held_out if sample.image_path.name.startswith("0006R0_")]
    assert len(held_out) == 101 and len(training) == 367
    assert not {s.image_path.name for s in held_out} & {s.image_path.name for s in training.samples}
