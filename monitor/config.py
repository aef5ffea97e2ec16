"""The configuration: one YAML file, loaded once at the edge into frozen settings.

Which file: ``--config``, else ``MONITOR_CONFIG``, else ``config/monitor.yaml``
in the working directory when it exists, else the defaults below (no watches).
Relative paths in the file are relative to the working directory.

Environment variables override URLs and secrets: ``MONITOR_DB`` (database),
``MONITOR_CTGOV_URL`` (API base URL), ``MONITOR_SNAPSHOTS`` (archive folder).

Every mistake is reported with the file, line and YAML path of the value
(:mod:`monitor.yamlconfig` reads the file)::

    config/monitor.yaml:14: watches[2].schedule: 'every 5 minuts' is not an interval or cron expression
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError

DEFAULT_PATH = Path("config") / "monitor.yaml"
DEFAULT_SCHEDULE = "every 6 hours"
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


@dataclass(frozen=True)
class WatchGroup:
    name: str
    schedule: Schedule
    trials: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "snapshots" if self.snapshots and not (self.trials or self.queries) else "ctgov"


@dataclass(frozen=True)
class CtgovSettings:
    base_url: str = "https://clinicaltrials.gov/api/v2"
    rate: float = 1.0
    retries: int = 5
    timeout: float = 60.0
    full_refresh_days: float = 7.0
    backfill: bool = True
    backfill_per_cycle: int = 10


@dataclass(frozen=True)
class DaemonSettings:
    misfire_grace_seconds: int = 300
    jitter_seconds: int = 0
    shutdown_timeout_seconds: int = 30


@dataclass(frozen=True)
class Digest:
    """Collect a route's events and send one message per period."""

    period: str  # hourly | daily | weekly
    at: str = "08:00"  # HH:MM, UTC (the minute only, for hourly)
    weekday: str = "mon"  # for weekly


@dataclass(frozen=True)
class Route:
    """Who hears what: Apprise URLs (or tags of an Apprise config file) and the
    rules that select the changes they get."""

    name: str
    urls: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    watches: tuple[str, ...] = ()  # watch group names; empty: every group
    trials: tuple[str, ...] = ()  # NCT ids; empty: every trial
    categories: tuple[str, ...] = ()  # empty: every category
    min_severity: str = "minor"
    digest: Digest | None = None
    format: str | None = None  # text | markdown | html | json (monitor.webhook); default by the URL's kind


@dataclass(frozen=True)
class NotificationSettings:
    routes: tuple[Route, ...] = ()
    apprise_config: str | None = None
    templates: str | None = None  # a folder of templates that override the built-in ones
    max_age_hours: float = 48.0  # retry a failing delivery this long, then mark it failed

    def route(self, name: str) -> Route:
        for route in self.routes:
            if route.name == name:
                return route
        raise ConfigError(f"no route named {name!r} (routes: {', '.join(r.name for r in self.routes) or 'none'})")


@dataclass(frozen=True)
class WebSettings:
    """`monitor serve`: where it listens and, off loopback, the credentials it requires."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None  # a bearer token (``Authorization: Bearer ...`` or ``?token=...``)
    username: str | None = None  # HTTP basic auth, with ``password``
    password: str | None = None


@dataclass(frozen=True)
class Settings:
    path: str | None = None
    database: str = "sqlite:///monitor.db"
    snapshots: str = "snapshots"
    ctgov: CtgovSettings = field(default_factory=CtgovSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    schedule: Schedule = field(default_factory=lambda: parse_schedule(DEFAULT_SCHEDULE))
    watches: tuple[WatchGroup, ...] = ()
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    web: WebSettings = field(default_factory=WebSettings)

    def group(self, name: str) -> WatchGroup:
        for group in self.watches:
            if group.name == name:
                return group
        raise ConfigError(f"no watch group named {name!r} in {self.path or 'the configuration'}")


def parse_schedule(text: str) -> Schedule | None:
    """``every 5 minutes``, ``90s``, ``1 hour``, or a five-field cron expression;
    None when ``text`` is neither."""
    value = " ".join(str(text).strip().lower().split())
    match = _INTERVAL.match(value)
    if match and match.group(2) in _UNITS:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return Schedule(str(text), seconds=seconds) if seconds > 0 else None
    if len(value.split()) == 5:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger(**cron_fields(value))
        except (ValueError, IndexError):
            return None
        return Schedule(str(text), cron=value)
    return None


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


# --- loading -------------------------------------------------------------------------


def config_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    if os.environ.get("MONITOR_CONFIG"):
        return Path(os.environ["MONITOR_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load_settings(given: str | None = None) -> Settings:
    """The effective settings: the file (if any), then the environment."""
    path = config_path(given)
    if path is None:
        return _with_environment(Settings())
    from monitor.yamlconfig import read_settings

    return _with_environment(read_settings(path))


def _with_environment(settings: Settings) -> Settings:
    overrides: dict[str, Any] = {}
    if os.environ.get("MONITOR_DB"):
        overrides["database"] = os.environ["MONITOR_DB"]
    if os.environ.get("MONITOR_SNAPSHOTS"):
        overrides["snapshots"] = os.environ["MONITOR_SNAPSHOTS"]
    if os.environ.get("MONITOR_CTGOV_URL"):
        overrides["ctgov"] = replace(settings.ctgov, base_url=os.environ["MONITOR_CTGOV_URL"])
    return replace(settings, **overrides)


# --- showing -------------------------------------------------------------------------

_SECRET_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@/\s]+)@")


def mask_secrets(text: str) -> str:
    """URLs with their passwords hidden."""
    return _SECRET_URL.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)


def effective(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, secrets masked."""
    return {
        "config": settings.path or "(built-in defaults)",
        "database": mask_secrets(settings.database),
        "snapshots": settings.snapshots,
        "ctgov": {**settings.ctgov.__dict__, "base_url": mask_secrets(settings.ctgov.base_url)},
        "daemon": dict(settings.daemon.__dict__),
        "schedule": settings.schedule.text,
        "watches": [
            {
                "name": g.name,
                "schedule": g.schedule.text,
                "trials": list(g.trials),
                "queries": list(g.queries),
                "snapshots": list(g.snapshots),
            }
            for g in settings.watches
        ],
        "notifications": {
            "apprise_config": settings.notifications.apprise_config,
            "templates": settings.notifications.templates,
            "max_age_hours": settings.notifications.max_age_hours,
            "routes": [_route_shown(r) for r in settings.notifications.routes],
        },
        "web": {
            "host": settings.web.host,
            "port": settings.web.port,
            "token": "***" if settings.web.token else None,  # secrets are never shown
            "username": settings.web.username,
            "password": "***" if settings.web.password else None,
        },
    }


def _route_shown(route: Route) -> dict[str, Any]:
    from monitor.notify import private_url

    shown = {
        "name": route.name,
        "urls": [private_url(u) for u in route.urls],
        "tags": list(route.tags),
        "watches": list(route.watches),
        "trials": list(route.trials),
        "categories": list(route.categories),
        "min_severity": route.min_severity,
        "format": route.format,
    }
    if route.digest:
        shown["digest"] = {"period": route.digest.period, "at": route.digest.at, "weekday": route.digest.weekday}
    return shown
