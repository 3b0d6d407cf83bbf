"""The labelled folders eval reads, told apart by their layout, on small folders made here: which layout a
folder is, the frames each lists, and the ground truth each reads (Cityscapes' labelIds as train ids, a
mask's ids as they are, a palette mask's indices), with one line for each mistake."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamseg.data.layouts import detect_layout, open_labelled_folder
from streamseg.errors import ConfigError, InputError
from streamseg.image.label_png import encode_label_png
from streamseg.label_sets import CAMVID, CITYSCAPES, custom_label_set

SIZE = (6, 8)  # (height, width)


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*SIZE, 3), 90, np.uint8))


def write_ids(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), ids)


def cityscapes_folder(root: Path, frames: dict[str, list[str]], split: str = "val") -> Path:
    """``frames``: city -> frame stems (``aachen_000000_000019``); every labelIds map is road (7)."""
    for city, stems in frames.items():
        for stem in stems:
            write_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            write_ids(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", np.full(SIZE, 7, np.uint8))
    return root


def masks_folder(root: Path, stems: list[str], suffix: str = ".png") -> Path:
    for stem in stems:
        write_image(root / "images" / f"{stem}{suffix}")
        write_ids(root / "masks" / f"{stem}.png", np.zeros(SIZE, np.uint8))
    return root


def camvid_folder(root: Path) -> Path:
    write_image(root / "val" / "0006R0_f00001.png")
    write_ids(root / "valannot" / "0006R0_f00001.png", np.full(SIZE, 3, np.uint8))
    return root


def test_each_layout_is_told_by_its_folders(tmp_path):
    assert detect_layout(camvid_folder(tmp_path / "camvid")) == "CamVid"
    assert detect_layout(cityscapes_folder(tmp_path / "cityscapes", {"bonn": ["bonn_000000_000019"]})) == "Cityscapes"
    assert detect_layout(masks_folder(tmp_path / "plain", ["a"])) == "images and masks"


def test_a_folder_of_no_layout_is_one_line_naming_all_three(tmp_path):
    (tmp_path / "val").mkdir()  # frames without their annotations are not CamVid either
    with pytest.raises(InputError) as caught:
        detect_layout(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "val/ and valannot/" in message and "leftImg8bit/ and gtFine/" in message and "images/ and masks/" in message
    with pytest.raises(InputError, match="is not a folder"):
        detect_layout(tmp_path / "missing")


def test_cityscapes_lists_every_city_of_the_split_sorted_by_name(tmp_path):
    root = cityscapes_folder(tmp_path, {"bonn": ["bonn_000001_000019"], "aachen": ["aachen_000000_000019", "aachen_000002_000019"]})
    cityscapes_folder(tmp_path, {"zurich": ["zurich_000000_000019"]}, split="train")
    folder = open_labelled_folder(root)
    assert folder.layout == "Cityscapes" and folder.description == "Cityscapes val"
    assert [s.image_path.name for s in folder.samples] == [
        "aachen_000000_000019_leftImg8bit.png", "aachen_000002_000019_leftImg8bit.png", "bonn_000001_000019_leftImg8bit.png",
    ]
    assert folder.samples[2].label_path == root / "gtFine" / "val" / "bonn" / "bonn_000001_000019_gtFine_labelIds.png"
    assert len(open_labelled_folder(root, "train+val").samples) == 4
    assert folder.label_set is CITYSCAPES


def test_cityscapes_label_ids_are_read_as_train_ids(tmp_path):
    root = cityscapes_folder(tmp_path, {"bonn": ["bonn_000000_000019"]})
    sample = open_labelled_folder(root).samples[0]
    # unlabelled 0, road 7, sidewalk 8, car 26, bicycle 33, license plate (stored as 255), ground 6 (not evaluated)
    label_ids = np.array([[0, 7, 8, 26, 33, 255, 6, 7]] * SIZE[0], np.uint8)
    write_ids(sample.label_path, label_ids)
    truth = open_labelled_folder(root).truth(sample, (*SIZE, 3))
    np.testing.assert_array_equal(truth[0], [255, 0, 1, 13, 18, 255, 255, 0])


def test_cityscapes_mistakes_are_one_line_each(tmp_path):
    root = cityscapes_folder(tmp_path, {"bonn": ["bonn_000000_000019", "bonn_000000_000020"]})
    with pytest.raises(InputError, match=r"no Cityscapes train split: expected .*leftImg8bit/train"):
        open_labelled_folder(root, "train")
    with pytest.raises(InputError, match="unknown Cityscapes split 'trainval'"):
        open_labelled_folder(root, "trainval")
    with pytest.raises(ConfigError, match="--hold-out-drive picks one of CamVid's drives"):
        open_labelled_folder(root, hold_out_drive="0006R0")
    label = root / "gtFine" / "val" / "bonn" / "bonn_000000_000020_gtFine_labelIds.png"
    write_ids(label, np.zeros((SIZE[0], SIZE[1] + 1), np.uint8))
    folder = open_labelled_folder(root)
    with pytest.raises(InputError, match=r"is 9x6 but its frame is 8x6"):
        folder.truth(folder.samples[1], (*SIZE, 3))
    write_ids(label, np.zeros(SIZE, np.uint16))
    with pytest.raises(InputError, match="is uint16; Cityscapes' labelIds are 8-bit PNGs"):
        folder.truth(folder.samples[1], (*SIZE, 3))
    label.unlink()
    with pytest.raises(InputError, match=r"1 frames in .* have no gtFine labelIds map, e\.g\. no .*bonn_000000_000020_gtFine_labelIds\.png"):
        open_labelled_folder(root)


def test_masks_are_read_as_the_ids_they_hold(tmp_path):
    root = masks_folder(tmp_path, ["b", "a"], suffix=".jpg")
    folder = open_labelled_folder(root)
    assert folder.layout == "images and masks" and folder.label_set is None
    assert [s.image_path.name for s in folder.samples] == ["a.jpg", "b.jpg"]
    assert folder.samples[0].label_path == root / "masks" / "a.png"
    wide = np.arange(48, dtype=np.uint16).reshape(SIZE) * 1000  # uint16: ids of a large label set
    write_ids(folder.samples[0].label_path, wide)
    truth = folder.truth(folder.samples[0], (*SIZE, 3))
    assert truth.dtype == np.uint16
    np.testing.assert_array_equal(truth, wide)


def test_a_palette_mask_gives_its_indices_not_its_colours(tmp_path):
    root = masks_folder(tmp_path, ["a"])
    ids = (np.arange(48).reshape(SIZE) % 19).astype(np.uint8)
    (root / "masks" / "a.png").write_bytes(encode_label_png(ids, CITYSCAPES.palette))
    folder = open_labelled_folder(root)
    np.testing.assert_array_equal(folder.truth(folder.samples[0], (*SIZE, 3)), ids)


def test_masks_folder_mistakes_are_one_line_each(tmp_path):
    root = masks_folder(tmp_path, ["a", "b"])
    with pytest.raises(ConfigError, match="has no splits: leave out --split"):
        open_labelled_folder(root, "val")
    (root / "masks" / "b.png").write_bytes(b"not a png")
    folder = open_labelled_folder(root)
    with pytest.raises(InputError, match=r"b\.png"):
        folder.truth(folder.samples[1], (*SIZE, 3))
    write_ids(root / "masks" / "b.png", np.zeros((*SIZE, 3), np.uint8))
    with pytest.raises(InputError, match="channels holds colours, not class ids"):
        folder.truth(folder.samples[1], (*SIZE, 3))
    (root / "masks" / "b.png").unlink()
    with pytest.raises(InputError, match=r"1 of the 2 images in .* have no mask in .*, e\.g\. b\.png"):
        open_labelled_folder(root)
    write_image(root / "images" / "a.jpg")
    with pytest.raises(InputError, match="several images named a"):
        open_labelled_folder(root)


def test_camvid_reads_as_ever_with_its_splits_and_drives(tmp_path):
    root = camvid_folder(tmp_path)
    folder = open_labelled_folder(root, hold_out_drive="0006R0")
    assert folder.description == "CamVid val drive 0006R0" and folder.label_set is CAMVID
    with pytest.raises(InputError, match="unknown split ''"):
        open_labelled_folder(root, "")
    with pytest.raises(InputError, match="no frames of drive '0001TP'"):
        open_labelled_folder(root, hold_out_drive="0001TP")
    write_ids(folder.samples[0].label_path, np.full(SIZE, 42, np.uint8))
    with pytest.raises(InputError, match="holds ids 42"):  # CamVid's stray ids are refused, not left out
        folder.truth(folder.samples[0], (*SIZE, 3))


def test_a_model_is_scored_on_a_folder_of_its_own_class_count_only(tmp_path):
    cityscapes = open_labelled_folder(cityscapes_folder(tmp_path / "cs", {"bonn": ["bonn_000000_000019"]}))
    cityscapes.check_model_classes(CITYSCAPES)
    cityscapes.check_model_classes(custom_label_set([f"class {i}" for i in range(19)]))  # the count is what matters
    with pytest.raises(ConfigError) as caught:
        cityscapes.check_model_classes(CAMVID)
    assert "the model has 11 classes (camvid) but a Cityscapes folder is scored in 19" in str(caught.value)
    open_labelled_folder(masks_folder(tmp_path / "plain", ["a"])).check_model_classes(custom_label_set(["a", "b", "c"]))
    with pytest.raises(ConfigError, match="the model has 19 classes .* but a CamVid folder is scored in 11"):
        open_labelled_folder(camvid_folder(tmp_path / "camvid")).check_model_classes(CITYSCAPES)
