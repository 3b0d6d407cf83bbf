"""Progress counters: a few whole lines into a file or pipe, one line redrawn in place on a terminal."""

from __future__ import annotations

import io

from streamseg.observability.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_a_line_at_each_quarter() -> None:
    stream = io.StringIO()
    with Progress(233, "frames", stream=stream) as progress:
        for done in range(1, 234):
            progress.update(done)
    assert stream.getvalue().splitlines() == ["59/233 frames", "117/233 frames", "175/233 frames", "233/233 frames"]


def test_a_terminal_gets_one_line_redrawn_and_ended() -> None:
    stream = Terminal()
    with Progress(3, "frames", stream=stream) as progress:
        for done in range(1, 4):
            progress.update(done, "loss 0.5")
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("3/3 frames loss 0.5\033[K\n")


def test_what_follows_an_unfinished_counter_starts_on_its_own_line() -> None:
    stream = Terminal()
    with Progress(10, "frames", stream=stream) as progress:
        progress.update(1)
    print("streamseg: error: something", file=stream)
    assert stream.getvalue().splitlines()[-1] == "streamseg: error: something"
