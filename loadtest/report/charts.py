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
    data: str = ""  # what the chart drew, as JSON (report.html carries it in data-values, for checks)


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
    from_zero: bool = False,
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
    if from_zero:
        ax.set_ylim(bottom=0)
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


def capacity_bars(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each bar of the capacity chart shows: users, server throughput, colour and label, from the verdict."""
    bars = []
    for s in steps:
        broke = s["verdict"] == "broke"
        side_breaches = [b for b in s.get("breaches", []) if b["side"] == ("server" if broke else "client")]
        label = ", ".join(f"{b['sli']} ({b['side']})" for b in side_breaches)
        bars.append(
            {
                "users": s["users"],
                "rps": s["server"]["throughput_rps"] or 0.0,
                "colour": "tab:red" if broke else "tab:grey" if s["verdict"] == "no_data" else "tab:green",
                "verdict": s["verdict"],
                "label": label,
                "generator_limited": bool(s.get("generator_limited")),
            }
        )
    return bars


def capacity_chart(steps: Sequence[dict[str, Any]], threshold_seconds: float) -> Chart:
    """Server throughput per step (bars: red only where the SLO verdict says the step broke, labelled with the SLI
    and side; a client-side breach is named above a green bar; hatched = generator-limited) and both p99s."""
    import json

    fig, ax = plt.subplots(figsize=(8, 3.2))
    bars = capacity_bars(steps)
    labels = [str(b["users"]) for b in bars]
    drawn = ax.bar(
        labels,
        [b["rps"] for b in bars],
        color=[b["colour"] for b in bars],
        alpha=0.7,
        hatch=None,
    )
    for rect, bar in zip(drawn, bars, strict=True):
        if bar["generator_limited"]:
            rect.set_hatch("//")
        if bar["label"]:
            ax.annotate(
                bar["label"],
                (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                color="tab:red" if bar["verdict"] == "broke" else "tab:orange",
            )
    ax.set_xlabel("users (no think time)")
    ax.set_ylabel("requests/s (server, per step)")
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    server_p99 = [(s["server"]["p99_seconds"] or 0) * 1000 for s in steps]
    client_p99 = [(s["client"]["p99_seconds"] or 0) * 1000 for s in steps]
    right.plot(labels, server_p99, color="tab:blue", marker="o", label="server p99 (ms)")
    right.plot(labels, client_p99, color="tab:orange", marker="^", label="client p99 (ms)")
    right.axhline(threshold_seconds * 1000, color="tab:blue", linestyle="--", linewidth=1, label="threshold")
    right.set_ylabel("ms")
    right.set_ylim(bottom=0)
    right.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_title(
        "Capacity: server throughput per step (red = the SLO broke, by the server-side SLIs)",
        loc="left",
        fontsize=10,
    )
    return Chart("capacity", "Capacity", _svg(fig), len(steps), data=json.dumps(bars))
