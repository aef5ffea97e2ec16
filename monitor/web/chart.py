"""The three key dates of a trial across its versions, as numbers for a small inline SVG (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from monitor.fields import FIELDS
from monitor.store import StoredVersion

SERIES = tuple(
    (name, FIELDS[name].label.lower(), colour)
    for name, colour in (
        ("start_date", "#1f77b4"),
        ("primary_completion_date", "#d62728"),
        ("completion_date", "#2ca02c"),
    )
)
WIDTH, HEIGHT, PAD_X, PAD_Y, LEGEND = 660, 200, 90, 20, 140


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text if len(text) == 10 else f"{text[:7]}-15")
    except ValueError:
        return None


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: tuple[tuple[float, float, str, str], ...]  # x, y, version label, date as the registry gives it

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in self.points)


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: tuple[Line, ...]
    ticks: tuple[tuple[float, str], ...]  # y, year
    columns: tuple[tuple[float, str], ...]  # x, version label


def dates_chart(history: list[StoredVersion]) -> Chart | None:
    """None when no version has any of the three dates."""
    values = [
        [(_day(getattr(v.record, name).date), getattr(v.record, name).date) for name, _, _ in SERIES] for v in history
    ]
    days = [d for row in values for d, _ in row if d]
    if not days:
        return None
    low, high = min(days).toordinal(), max(days).toordinal()
    low, high = (low - 30, high + 30) if high - low < 60 else (low, high)
    inner_w, inner_h = WIDTH - PAD_X - LEGEND, HEIGHT - 2 * PAD_Y
    step = inner_w / max(1, len(history) - 1)

    def x(i: int) -> float:
        return PAD_X + (i * step if len(history) > 1 else inner_w / 2)

    def y(d: date) -> float:
        return PAD_Y + inner_h - (d.toordinal() - low) / (high - low) * inner_h

    lines = []
    for s, (_, label, colour) in enumerate(SERIES):
        points = tuple(
            (x(i), y(row[s][0]), f"v{v.number}", row[s][1])
            for i, (v, row) in enumerate(zip(history, values, strict=True))
            if row[s][0]
        )
        if points:
            lines.append(Line(label, colour, points))
    years = range(date.fromordinal(low).year + 1, date.fromordinal(high).year + 1)
    ticks = tuple((y(date(year, 1, 1)), str(year)) for year in years)
    columns = tuple((x(i), f"v{v.number}") for i, v in enumerate(history))
    return Chart(WIDTH, HEIGHT, tuple(lines), ticks, columns)
