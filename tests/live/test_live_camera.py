"""CameraSource against the machine's real video devices (most test machines have none)."""

from __future__ import annotations

import pytest

from streamseg.cli import EXIT_USAGE, main
from streamseg.errors import InputError
from streamseg.sources.camera import CameraSource, parse_camera, video_devices


@pytest.mark.parametrize(
    ("spec", "device"),
    [("camera", 0), ("camera:2", 2), ("CAMERA:10", 10), ("/dev/video3", "/dev/video3")],
)
def test_camera_specs(spec: str, device: int | str) -> None:
    assert parse_camera(spec) == device


@pytest.mark.parametrize("spec", ["camera:", "camera:x", "/dev/videox", "webcam"])
def test_bad_camera_specs(spec: str) -> None:
    with pytest.raises(InputError, match="not a camera"):
        parse_camera(spec)


@pytest.mark.parametrize("device", [99, "/dev/video99"])
def test_missing_camera_lists_the_devices_found(device: int | str) -> None:
    with pytest.raises(InputError) as caught:
        CameraSource(device)
    message = str(caught.value)
    assert "cannot open camera /dev/video99: no such device" in message
    devices = video_devices()
    expected = ", ".join(devices) if devices else "no video devices found"
    assert expected in message


@pytest.mark.parametrize("spec", ["/dev/video99", "camera:99"])
def test_cli_exits_2_with_one_line_for_a_missing_camera(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", spec, "--max-frames", "1"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("streamseg: error: cannot open camera /dev/video99")
    assert "video devices" in err[0]


def test_reads_frames_from_the_first_camera() -> None:
    devices = video_devices()
    if not devices:
        pytest.skip("no /dev/video* device on this machine")
    try:
        source = CameraSource(devices[0])
    except InputError as error:
        pytest.skip(f"{devices[0]} is not a usable capture device here: {error}")
    with source:
        assert source.live and source.fps > 0
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 3:
                break
    assert [frame.index for frame in frames] == [0, 1, 2]
    assert frames[0].image.ndim == 3 and frames[0].image.shape[2] == 3
