"""Charts of a run window as inline SVG, drawn by matplotlib (Agg backend, glyphs as paths: no fonts, no network).

Each function returns ``Chart``: its title, the SVG markup and how many series it drew (0 = an empty panel).
Fault windows are shaded on every time chart, capacity steps are marked by vertical lines.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

plt.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "lab-report", "font.size": 9})


@dataclass(frozen=True)
class Series:
    label: str
    times: list[float]  # seconds after the window's start
    values: list[float]


@dataclass(frozen=True)
class Span:
    start: float  # seconds after the window's start
    end: float
    label: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    svg: str
    series: int
    note: str = ""


@dataclass
class Marks:
    """What every time chart shows besides its data."""

    faults: list[Span] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)  # step boundaries, seconds after the start
    duration: float = 0.0


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: the SVG is inlined in HTML


def _decorate(ax: Axes, marks: Marks) -> None:
    for i, span in enumerate(marks.faults):
        ax.axvspan(
            span.start, span.end, color="tab:red", alpha=0.12, label="fault window" if i == 0 else None
        )
    for boundary in marks.steps:
        ax.axvline(boundary, color="0.6", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, max(marks.duration, 1.0))
    ax.set_xlabel("seconds since the start")
    ax.grid(True, alpha=0.3)


def time_chart(
    key: str,
    title: str,
    series: Sequence[Series],
    marks: Marks,
    *,
    unit: str = "",
    lines: Sequence[tuple[float, str, str]] = (),
    log: bool = False,
    max_series: int = 12,
    right: Sequence[Series] = (),
    right_unit: str = "",
) -> Chart:
    """Lines over time, with horizontal reference lines (value, label, colour) such as a threshold;
    ``right`` series go on a second y axis (e.g. users beside requests/s)."""
    fig, ax = plt.subplots(figsize=(8, 2.8))
    drawn = [s for s in series if s.times][:max_series]
    for s in drawn:
        ax.plot(s.times, s.values, label=s.label, linewidth=1.2)
    if right:
        twin = ax.twinx()
        for s in right:
            twin.step(s.times, s.values, where="post", label=s.label, color="tab:purple", linewidth=1.2)
        twin.set_ylabel(right_unit)
        twin.legend(loc="lower left", bbox_to_anchor=(1.01, 0), fontsize=7, frameon=False)
    for value, label, colour in lines:
        ax.axhline(value, color=colour, linestyle="--", linewidth=1, label=label)
    if log and drawn:
        ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylabel(unit)
    _decorate(ax, marks)
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="tab:red")
    if drawn or lines:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    ax.set_title(title, loc="left", fontsize=10)
    note = f"{len(series) - len(drawn)} more series not drawn" if len(series) > len(drawn) else ""
    return Chart(key, title, _svg(fig), len(drawn) + len([s for s in right if s.times]), note)


def state_chart(key: str, title: str, rows: dict[str, list[tuple[float, float, str]]], marks: Marks) -> Chart:
    """One row per alert: grey = inactive, orange = pending, red = firing."""
    names = sorted(rows)
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.35 * max(1, len(names))))
    colours = {"pending": "tab:orange", "firing": "tab:red"}
    for i, name in enumerate(names):
        ax.broken_barh([(0, max(marks.duration, 1.0))], (i - 0.3, 0.6), color="0.9")
        for start, end, state in rows[name]:
            ax.broken_barh([(start, max(end - start, 0.5))], (i - 0.3, 0.6), color=colours[state])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    _decorate(ax, marks)
    ax.grid(False)
    ax.set_title(title, loc="left", fontsize=10)
    return Chart(key, title, _svg(fig), len(names))


def capacity_chart(steps: Sequence[dict[str, Any]], threshold_seconds: float) -> Chart:
    """Throughput per step (bars; green = both SLOs held) and p99 latency against the threshold."""
    fig, ax = plt.subplots(figsize=(8, 3))
    labels = [str(s["users"]) for s in steps]
    colours = [
        "tab:green" if s["meets_slo"] and not s.get("generator", {}).get("breaches") else "tab:red"
        for s in steps
    ]
    ax.bar(labels, [s["throughput_rps"] for s in steps], color=colours, alpha=0.7)
    ax.set_xlabel("users (no think time)")
    ax.set_ylabel("requests/s (Prometheus)")
    right = ax.twinx()
    p99 = [(s["latency_p99_seconds"] or 0) * 1000 for s in steps]
    right.plot(labels, p99, color="tab:blue", marker="o", label="p99 (ms)")
    right.axhline(threshold_seconds * 1000, color="tab:blue", linestyle="--", linewidth=1, label="threshold")
    cpu = [s.get("generator", {}).get("generator_cpu_percent") or 0 for s in steps]
    right.plot(labels, cpu, color="tab:purple", marker="s", linewidth=0.8, label="Locust CPU (% of a core)")
    right.set_ylabel("ms / %")
    right.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_title("Capacity: throughput per step (green = both SLOs held)", loc="left", fontsize=10)
    return Chart("capacity", "Capacity", _svg(fig), len(steps))
