"""The overview's small charts: per-minute figures of the last hour from the traffic table, as SVG bars.

Drawn on the server (no chart library, nothing inline for the CSP to refuse): the template gets
bar rectangles with their geometry already computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from routing.clock import iso
from storage.traffic import MinuteFigures

MINUTES = 60
WIDTH = 360
HEIGHT = 64
BAR = WIDTH // MINUTES


@dataclass(frozen=True)
class Bar:
    """One minute's bar: position, height and the tooltip text."""

    x: int
    y: int
    height: int
    label: str


@dataclass(frozen=True)
class Chart:
    """A bar chart with its headline figures."""

    title: str
    unit: str
    bars: list[Bar]
    peak: float
    total: float
    width: int = WIDTH
    height: int = HEIGHT


def minute_slots(now: datetime) -> list[str]:
    """The last hour's minutes as 'YYYY-MM-DDTHH:MM', oldest first, the current minute last."""
    return [iso(now - timedelta(minutes=MINUTES - 1 - i))[:16] for i in range(MINUTES)]


def _chart(title: str, unit: str, slots: list[str], values: dict[str, float]) -> Chart:
    peak = max(values.values(), default=0.0)
    bars = []
    for i, minute in enumerate(slots):
        value = values.get(minute, 0.0)
        height = 0 if peak <= 0 else max(1 if value > 0 else 0, round(value / peak * (HEIGHT - 4)))
        bars.append(Bar(x=i * BAR, y=HEIGHT - height, height=height, label=f"{minute}Z: {value:g} {unit}"))
    return Chart(title=title, unit=unit, bars=bars, peak=round(peak, 1), total=round(sum(values.values()), 1))


def charts(now: datetime, figures: list[MinuteFigures]) -> list[Chart]:
    """Messages per minute (partner requests in, deliveries out) and delivery latency, last hour."""
    slots = minute_slots(now)
    by_minute = {f.minute: f for f in figures if f.minute >= slots[0]}
    requests = {m: float(f.requests_in) for m, f in by_minute.items()}
    calls = {m: float(f.calls_out) for m, f in by_minute.items()}
    latency = {m: round(f.latency_avg_ms, 1) for m, f in by_minute.items() if f.latency_avg_ms is not None}
    return [
        _chart("Requests from partners per minute", "requests", slots, requests),
        _chart("Deliveries to partners per minute", "calls", slots, calls),
        _chart("Mean delivery latency per minute", "ms", slots, latency),
    ]
