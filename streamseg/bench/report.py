"""Figures of a ``streamseg bench`` result, as PNGs: ``streamseg bench --report DIR`` and ``tools/plot_benchmarks.py``.

matplotlib is the optional ``report`` extra. It is imported only when a figure is drawn, so
checking the folder and the extra before a run costs nothing, and the rest of the package never
needs it. Figures are drawn on matplotlib's Agg canvas (no window, no pyplot state), always at
``FIGURE_SIZE_PX``, so a reader, or a test, knows each PNG's size in advance.
"""

from __future__ import annotations

import math
import tempfile
import textwrap
from pathlib import Path

from streamseg.errors import ConfigError, OutputError

FIGURE_DPI = 100
FIGURE_SIZE_PX = (960, 540)  # width, height of every PNG written here
FIGURES = ("fps.png", "stage-latency.png", "end-to-end-latency.png")
PERCENTILES = ("p50", "p95", "p99")
INSTALL_HINT = "pip install 'streamseg[report]'"

# Colours that stay apart for the common kinds of colour blindness (Okabe and Ito).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def report_folder(text: str, option: str = "--report") -> Path:
    """The folder an option names, checked before any work: figures that cannot be written should not cost a run.

    It need not exist yet (it is made when the figures are written), but the nearest folder
    above it that does exist must be writable.
    """
    if not text.strip():
        raise OutputError(f"{option} needs a folder name")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file; give a folder for the figures")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{option} {path}: {existing} is a file, not a folder")
    try:  # a real file, not os.access: root passes access() even where nothing can be created (/proc, a read-only mount)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError:
        raise OutputError(f"{option} {path} is not writable") from None
    return path


def require_matplotlib(option: str = "--report") -> None:
    """Refuse in one line, before any work, where the ``report`` extra is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(f"{option} draws its figures with matplotlib, which is not installed: {INSTALL_HINT}") from None


def new_figure(columns: int = 1, rows: int = 1):
    """A figure of ``FIGURE_SIZE_PX`` on the Agg canvas and its axes (one, or an array for several)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = FIGURE_SIZE_PX
    figure = Figure(figsize=(width / FIGURE_DPI, height / FIGURE_DPI), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=True)


def save_figure(figure, path: Path) -> Path:
    """Write ``figure`` as a PNG of exactly ``FIGURE_SIZE_PX`` (no tight bounding box, which would change it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=FIGURE_DPI, format="png")
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def write_figures(result: dict, folder: Path, prefix: str = "") -> list[Path]:
    """The figures of one ``run_benchmark`` result (or its JSON), written into ``folder`` as ``prefix`` + ``FIGURES``."""
    drawers = (fps_figure, stage_latency_figure, end_to_end_figure)
    return [save_figure(draw(result), folder / f"{prefix}{name}") for name, draw in zip(FIGURES, drawers)]


def subtitle(result: dict) -> str:
    """What ran, where and when, from the result itself: a figure read alone still names its machine and date."""
    source = Path(str(result.get("source", "?"))).name
    what = f"{result.get('model', '?')} on {result.get('backend', '?')}, source {source}"
    machine = str(result.get("machine") or "").split(", Linux")[0]  # the kernel's build string says nothing to a reader
    where = ", ".join(part for part in (machine, str(result.get("date", ""))[:10]) if part)
    rounds = result.get("rounds", 1)
    where += f"; medians of {rounds} rounds" if rounds > 1 else ""
    return "\n".join(textwrap.fill(line, 110) for line in (what, where) if line)


def fps_figure(result: dict):
    """Frames per second of the model alone, the naive loop and the pipeline, each round as a dot."""
    figure, axes = new_figure()
    runs = [("model only", result["model_only"]), ("naive loop", result["naive"]), ("pipelined", result["pipelined"])]
    positions = list(range(len(runs)))
    heights = [run["fps"] for _, run in runs]
    axes.bar(positions, heights, width=0.6, color=COLOURS[:3])
    for position, (_, run) in zip(positions, runs):
        each = run.get("fps_each_round") or []
        if len(each) > 1:
            axes.plot([position + 0.2] * len(each), each, "o", color="black", markersize=4)
        cpu = run.get("cpu_ms_per_frame")
        text = f"{run['fps']:.1f} fps" + (f"\ncpu {cpu:.1f} ms/frame" if cpu is not None else "")
        axes.text(position, run["fps"] / 2, text, ha="center", va="center", color="white", fontsize=11, fontweight="bold")
    bound = result["pipelined"].get("slowest_stage_bound_fps")
    if bound:
        axes.axhline(bound, color="grey", linestyle="--", linewidth=1,
                     label=f"the slowest stage ({result['pipelined'].get('slowest_stage', '?')}) bounds the pipeline "
                     f"at {bound:.1f} fps")
        axes.legend(loc="upper left")
    axes.set_xticks(positions, [name for name, _ in runs])
    axes.set_xlim(-0.5, len(runs) - 0.5)
    axes.set_ylabel("frames per second" + (" (dots: each round)" if result.get("rounds", 1) > 1 else ""))
    tallest = max([bound or 0.0] + heights + [fps for _, run in runs for fps in run.get("fps_each_round") or []])
    axes.set_ylim(0, tallest * 1.3)  # room above the bars for the legend
    ratio = result.get("pipelined_over_model_only")
    title = "Frames per second" + (f": the pipeline keeps {ratio:.2f} of the model alone" if ratio else "")
    axes.set_title(f"{title}\n{subtitle(result)}", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    return figure


def stage_latency_figure(result: dict):
    """Each stage's p50, p95 and p99, in the naive loop and in the pipeline, on one scale."""
    figure, axes = new_figure(columns=2)
    runs = (("naive loop", result["naive"]), ("pipelined", result["pipelined"]))
    longest = max((s.get("p99", 0) for _, run in runs for s in run["stage_latency_ms"].values()), default=0)
    for ax, (name, run) in zip(axes, runs):
        stages = [stage for stage, figures in run["stage_latency_ms"].items() if figures]
        _percentile_bars(ax, stages, [run["stage_latency_ms"][stage] for stage in stages], labels=True)
        ax.set_title(name)
        ax.set_xlabel("ms per frame")
        ax.set_xlim(0, max(longest * 1.25, 1.0))
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(loc="lower right")
    figure.suptitle(f"Latency of each stage\n{subtitle(result)}", fontsize=10)
    return figure


def end_to_end_figure(result: dict):
    """The latency distribution of one frame, as its mean and percentiles: the model's call, the naive loop, the pipeline."""
    figure, axes = new_figure()
    rows = [("model only\n(one call)", result["model_only"].get("latency_ms", {})),
            ("naive loop", result["naive"].get("end_to_end_ms", {})),
            ("pipelined", result["pipelined"].get("end_to_end_ms", {}))]
    rows = [(name, figures) for name, figures in rows if figures]
    markers = {"mean": "x", "p50": "o", "p95": "s", "p99": "^"}
    for row, (_, figures) in enumerate(rows):
        axes.plot([figures.get("p50", 0), figures.get("p99", 0)], [row, row], color="grey", linewidth=2, zorder=1)
        for k, (key, marker) in enumerate(markers.items()):
            if key in figures:
                axes.scatter(figures[key], row, marker=marker, s=60, color=COLOURS[k], zorder=2,
                             label=key if row == 0 else None)
        text = "   ".join(f"{key} {figures[key]:.1f}" for key in markers if key in figures)
        axes.annotate(text + " ms", (figures.get("p50", 0), row), xytext=(0, 12), textcoords="offset points", fontsize=9)
    values = [value for _, figures in rows for value in figures.values() if value > 0]
    axes.set_xscale("log")
    if values:
        # Leave the right 40% of the axis free of the rightmost p50, where its row's figures are written.
        low, p50 = math.log(min(values) / 1.5), math.log(max(figures.get("p50", 1.0) for _, figures in rows))
        axes.set_xlim(math.exp(low), max(math.exp((p50 - 0.4 * low) / 0.6), max(values) * 1.5))
    axes.set_yticks(range(len(rows)), [name for name, _ in rows])
    axes.set_ylim(len(rows) - 0.4, -0.6)
    axes.set_xlabel("ms from a frame's capture to its labels (log scale; the line runs from p50 to p99)")
    axes.grid(axis="x", alpha=0.3, which="both")
    figure.legend(loc="outside right upper")
    axes.set_title(f"End-to-end latency (a file's pipelined frames also wait in the bounded queues)\n{subtitle(result)}",
                   fontsize=10)
    return figure


def _percentile_bars(axes, names: list[str], figures: list[dict], keys=PERCENTILES, labels: bool = False) -> None:
    """Horizontal bars, one group per name and one bar per percentile."""
    height = 0.8 / len(keys)
    for k, key in enumerate(keys):
        values = [row.get(key, 0.0) for row in figures]
        offsets = [i - 0.4 + height * (k + 0.5) for i in range(len(names))]
        bars = axes.barh(offsets, values, height=height, color=COLOURS[k], label=key)
        if labels:
            axes.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    axes.set_yticks(range(len(names)), names)
