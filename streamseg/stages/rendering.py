"""Draws the overlay (class colours, the uncertain pixels greyed when asked, legend, live stats) onto a copy of the frame."""

from __future__ import annotations

from typing import Callable

from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage
from streamseg.image.render import Renderer


class RenderStage(Stage):
    name = "render"
    takes = frozenset({"image"})  # labels are drawn when present
    gives = frozenset({"overlay"})

    def __init__(self, renderer: Renderer, stats_lines: Callable[[], list[str]]) -> None:
        self.renderer = renderer
        self.stats_lines = stats_lines

    def process(self, frame: Frame) -> None:
        self.renderer.render(frame, self.stats_lines())
