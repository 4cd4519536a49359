"""The overview's charts: per-minute figures of the last hour from the traffic table, as SVG bars.

Drawn on the server (no chart library, nothing inline for the CSP to refuse): the template gets
bars, axis ticks and labels with their geometry already computed. Counts stay integers (a
request is never 2.5 requests); the value axis starts at zero and ends at a round number, the
time axis is labelled every ten minutes (UTC, the hub's clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from routing.clock import iso
from storage.traffic import MinuteFigures

MINUTES = 60
BAR = 9  # px per minute slot (the bar is BAR - 2 wide)
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 28, 26  # margins: value labels left, time labels below, unit on top
PLOT_WIDTH = MINUTES * BAR
PLOT_HEIGHT = 120
WIDTH = LEFT + PLOT_WIDTH + RIGHT
HEIGHT = TOP + PLOT_HEIGHT + BOTTOM
TIME_TICK_EVERY = 10  # minutes


@dataclass(frozen=True)
class Bar:
    """One minute's bar: position, size and the tooltip text."""

    x: int
    y: int
    height: int
    label: str
    width: int = BAR - 2


@dataclass(frozen=True)
class Tick:
    """An axis mark: its coordinate (y for the value axis, x for the time axis) and its text."""

    at: int
    label: str


@dataclass(frozen=True)
class Chart:
    """A bar chart with its axes and headline figures."""

    title: str
    unit: str  # what one bar's value counts: "requests", "calls", "ms"
    axis: str  # the value axis's label, with its unit: "requests / min", "ms"
    bars: list[Bar]
    peak: int | float
    total: int | None  # None where a sum means nothing (latency)
    value_ticks: list[Tick]
    time_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_width: int = PLOT_WIDTH
    plot_height: int = PLOT_HEIGHT

    @property
    def baseline(self) -> int:
        """The y of the value axis's zero."""
        return self.top + self.plot_height


def minute_slots(now: datetime) -> list[str]:
    """The last hour's minutes as 'YYYY-MM-DDTHH:MM', oldest first, the current minute last."""
    return [iso(now - timedelta(minutes=MINUTES - 1 - i))[:16] for i in range(MINUTES)]


def nice_top(peak: float, *, integer: bool) -> float:
    """The value axis's end: the smallest 1, 2 or 5 times a power of ten at or above the peak."""
    if peak <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(peak))
    for step in (1, 2, 5, 10):
        top = step * power
        if top >= peak:
            return float(max(1, math.ceil(top))) if integer else float(top)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _number(value: float, *, integer: bool) -> str:
    return str(round(value)) if integer else f"{value:g}"


def _value_ticks(top: float, *, integer: bool) -> list[Tick]:
    halves = [0.0, top] if integer and int(top) % 2 else [0.0, top / 2, top]
    return [
        Tick(at=round(TOP + PLOT_HEIGHT - v / top * PLOT_HEIGHT), label=_number(v, integer=integer)) for v in halves
    ]


def _time_ticks(slots: list[str]) -> list[Tick]:
    # A label every ten minutes of the clock (10:20, 10:30, ...), centred under its minute's bar.
    return [
        Tick(at=LEFT + i * BAR + BAR // 2, label=minute[11:16])
        for i, minute in enumerate(slots)
        if int(minute[14:16]) % TIME_TICK_EVERY == 0
    ]


def _chart(title: str, unit: str, axis: str, slots: list[str], values: dict[str, float], *, integer: bool) -> Chart:
    peak = max(values.values(), default=0.0)
    top = nice_top(peak, integer=integer)
    bars = []
    for i, minute in enumerate(slots):
        value = values.get(minute, 0.0)
        height = 0 if value <= 0 else max(1, round(value / top * PLOT_HEIGHT))
        text = _number(value, integer=integer)
        bars.append(
            Bar(x=LEFT + i * BAR + 1, y=TOP + PLOT_HEIGHT - height, height=height, label=f"{minute}Z: {text} {unit}")
        )
    return Chart(
        title=title,
        unit=unit,
        axis=axis,
        bars=bars,
        peak=round(peak) if integer else round(peak, 1),
        total=round(sum(values.values())) if integer else None,
        value_ticks=_value_ticks(top, integer=integer),
        time_ticks=_time_ticks(slots),
    )


def charts(now: datetime, figures: list[MinuteFigures]) -> list[Chart]:
    """Messages per minute (partner requests in, deliveries out) and delivery latency, last hour."""
    slots = minute_slots(now)
    by_minute = {f.minute: f for f in figures if f.minute >= slots[0]}
    requests = {m: float(f.requests_in) for m, f in by_minute.items()}
    calls = {m: float(f.calls_out) for m, f in by_minute.items()}
    latency = {m: round(f.latency_avg_ms, 1) for m, f in by_minute.items() if f.latency_avg_ms is not None}
    return [
        _chart("Requests from partners per minute", "requests", "requests / min", slots, requests, integer=True),
        _chart("Deliveries to partners per minute", "calls", "calls / min", slots, calls, integer=True),
        _chart("Mean delivery latency per minute", "ms", "ms (mean)", slots, latency, integer=False),
    ]
