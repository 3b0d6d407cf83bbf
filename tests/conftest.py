"""Where the shared, third-party data lives; tests that need it skip when it is absent."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMVID = SHARED_DATA / "camvid"
ROAD_VIDEO = SHARED_DATA / "video" / "solidWhiteRight.mp4"


@pytest.fixture
def camvid() -> Path:
    if not (CAMVID / "train").is_dir():
        pytest.skip(f"CamVid is not at {CAMVID} (../shared/data is absent in a fresh clone)")
    return CAMVID


@pytest.fixture
def road_video() -> Path:
    if not ROAD_VIDEO.is_file():
        pytest.skip(f"{ROAD_VIDEO} is absent (../shared/data is absent in a fresh clone)")
    return ROAD_VIDEO
