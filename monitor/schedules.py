"""Schedules: an interval (``every 5 minutes``, ``90s``) or a five-field cron
expression in UTC, checked to be one that can run."""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.clock import utc_now

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 604800,
    "week": 604800,
}
_INTERVAL = re.compile(r"^(?:every\s+)?(\d+(?:\.\d+)?)\s*([a-z]+?)s?$")


@dataclass(frozen=True)
class Schedule:
    """Every ``seconds`` seconds, or a five-field ``cron`` expression."""

    text: str
    seconds: float | None = None
    cron: str | None = None


MAX_INTERVAL_SECONDS = 366 * 86400


def parse_schedule(text: str) -> Schedule | None:
    """``every 5 minutes``, ``90s``, ``1 hour``, or a five-field cron expression;
    None when ``text`` is neither (or cannot run: see :func:`check_schedule`)."""
    return check_schedule(text)[0]


def check_schedule(text: str) -> tuple[Schedule | None, str | None]:
    """(the schedule, None), or (None, what is wrong with ``text``): not an
    interval or cron expression, an interval longer than a year, a cron
    expression that never fires (``0 0 30 2 *``)."""
    value = " ".join(str(text).strip().lower().split())
    match = _INTERVAL.match(value)
    if match and match.group(2) in _UNITS:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds > MAX_INTERVAL_SECONDS:
            return None, f"{text!r} is longer than the longest interval (366 days)"
        if seconds > 0:
            return Schedule(str(text), seconds=seconds), None
    elif len(value.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            trigger = CronTrigger(**cron_fields(value), timezone="UTC")
        except (ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError):
            pass
        else:
            if trigger.get_next_fire_time(None, utc_now()) is None:
                return None, f"{text!r} never fires (no date matches it)"
            return Schedule(str(text), cron=value), None
    return None, f"{text!r} is not an interval or cron expression"


_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def cron_fields(cron: str) -> dict[str, str]:
    minute, hour, day, month, day_of_week = cron.split()
    return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": _cron_days(day_of_week)}


def _cron_days(field: str) -> str:
    """Cron's numeric weekdays (0 and 7 are Sunday) as APScheduler's names,
    whose numbers start on Monday."""
    parts = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        start, _, end = span.partition("-")
        if not start.isdigit() or (end and not end.isdigit()):
            parts.append(part)
            continue
        first, last = int(start), int(end) if end else None
        if last is None:
            parts.append(_DAYS[first] + (f"/{step}" if step else ""))
        elif first == 0:
            parts += ["sun"] + ([f"mon-{_DAYS[last]}" if last > 1 else "mon"] if last >= 1 else [])
        else:
            parts.append(f"{_DAYS[first]}-{_DAYS[last]}" + (f"/{step}" if step else ""))
    return ",".join(parts)
