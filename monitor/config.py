"""The configuration: one YAML file, loaded once at the edge into frozen settings.

Which file: ``--config``, else ``MONITOR_CONFIG``, else ``config/monitor.yaml``
in the working directory when it exists, else the defaults below (no watches).
Relative paths in the file are relative to the working directory.

Precedence: an option on the command line over the environment over the file
over the defaults. The environment is read here only (:func:`environment`):
``MONITOR_DB`` (database), ``MONITOR_SNAPSHOTS`` (archive folder),
``MONITOR_CTGOV_URL``, ``MONITOR_CTGOV_RATE``, ``MONITOR_CTGOV_RETRIES``, and
``${VAR}`` in notification URLs.  Every value is held to the same checks
wherever it comes from (:data:`RANGES`, :func:`database_problem`).

Every mistake is reported with the file, line and YAML path of the value
(:mod:`monitor.yamlconfig` reads the file)::

    config/monitor.yaml:14: watches[2].schedule: 'every 5 minuts' is not an interval or cron expression
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monitor import limits as _limits
from monitor.errors import ConfigError
from monitor.expected import Thresholds
from monitor.limits import Limits
from monitor.schedules import Schedule, check_schedule, cron_fields, parse_schedule  # noqa: F401 (re-exported)

DEFAULT_PATH = Path("config") / "monitor.yaml"
DEFAULT_SCHEDULE = "every 6 hours"


@dataclass(frozen=True)
class WatchGroup:
    name: str
    schedule: Schedule
    trials: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()
    # The word of the source its trials and queries come from (monitor.sources.registry);
    # when not given, inferred from its keys: `files` for snapshots alone, else `ctgov`.
    source: str = ""

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", "files" if self.kind == "snapshots" else "ctgov")

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
    min_materiality: str = "noise"  # noise | low | medium | high (monitor.materiality)


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
class StorageSettings:
    """Where raw payloads are kept: once, compressed in the database, by default."""

    archive: bool = False  # also write every fetched payload to the gzip archive under `snapshots`
    keep_raw_versions: int = 0  # keep each trial's newest N raw payloads (0: all); records and changes stay


@dataclass(frozen=True)
class Settings:
    path: str | None = None
    database: str = "sqlite:///monitor.db"
    snapshots: str = "snapshots"
    storage: StorageSettings = field(default_factory=StorageSettings)
    ctgov: CtgovSettings = field(default_factory=CtgovSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    schedule: Schedule = field(default_factory=lambda: parse_schedule(DEFAULT_SCHEDULE))
    watches: tuple[WatchGroup, ...] = ()
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    expected: Thresholds = field(default_factory=Thresholds)  # the expected-event rules (monitor.expected)
    materiality: tuple[tuple[str, str], ...] = ()  # (rule, level): the configuration's materiality levels
    # bounds on files, registry answers, JSON: monitor.limits (its defaults read when settings are made)
    limits: Limits = field(default_factory=lambda: _limits.DEFAULT_LIMITS)
    # Files and folders the file names that do not exist (`file:line: path: message`):
    # `config check` and `run` refuse them (see require_files); other commands need none.
    missing: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def require_files(self) -> None:
        """A ConfigError listing the missing files and folders, if any."""
        if self.missing:
            more = f" (and {len(self.missing) - 1} more: run `monitor config check`)" if len(self.missing) > 1 else ""
            error = ConfigError(self.missing[0] + more)
            error.problems = list(self.missing)
            raise error

    web: WebSettings = field(default_factory=WebSettings)

    def group(self, name: str) -> WatchGroup:
        for group in self.watches:
            if group.name == name:
                return group
        raise ConfigError(f"no watch group named {name!r} in {self.path or 'the configuration'}")


# --- loading -------------------------------------------------------------------------

# The settings the environment and the command line may set: (variable, option).
# This module is the one place that reads the environment.
CONFIG_VARIABLE = "MONITOR_CONFIG"
OVERRIDES = {
    "database": ("MONITOR_DB", "--db"),
    "snapshots": ("MONITOR_SNAPSHOTS", "--snapshots"),
    "ctgov.base_url": ("MONITOR_CTGOV_URL", "--ctgov-url"),
    "ctgov.rate": ("MONITOR_CTGOV_RATE", "--rate"),
    "ctgov.retries": ("MONITOR_CTGOV_RETRIES", "--retries"),
}
# Each number's range: (least, most, whole number); the file, the environment and the
# command line are all held to it.
RANGES: dict[str, tuple[float, float, bool]] = {
    "ctgov.rate": (0, 100, False),  # 0: no limit
    "ctgov.retries": (0, 20, True),
    "ctgov.timeout": (1, 3600, False),
    "ctgov.full_refresh_days": (1, 366, False),
    "ctgov.backfill_per_cycle": (0, 10_000, True),
    "daemon.misfire_grace_seconds": (1, 86_400, True),
    "daemon.jitter_seconds": (0, 86_400, True),
    "daemon.shutdown_timeout_seconds": (1, 3_600, True),
    "notifications.max_age_hours": (1, 8_784, False),
    "web.port": (1, 65_535, True),
    "storage.keep_raw_versions": (0, 1_000_000, True),  # 0: keep every raw payload
    "expected.completion_grace_days": (0, 1_000_000, True),  # a huge value turns a rule off
    "expected.results_grace_days": (0, 1_000_000, True),
    "expected.verification_days": (1, 1_000_000, True),
    # monitor.limits: raise one where a real input needs more; lower ones refuse sooner
    "limits.max_file_bytes": (1024, 4 * 1024**3, True),
    "limits.max_body_bytes": (1024, 4 * 1024**3, True),
    "limits.max_decompressed_bytes": (1024, 16 * 1024**3, True),
    "limits.max_json_depth": (10, 500, True),  # Python's JSON parser recurses; 500 stays clear of its limit
    "limits.max_text_chars": (1_000, 1_000_000_000, True),
    "limits.max_number_digits": (10, 4_000, True),  # Python refuses integers past 4,300 digits
    "limits.request_deadline_seconds": (1, 3_600, False),
    "limits.max_retry_after_seconds": (0, 86_400, False),
    "limits.max_pages": (1, 100_000, True),
}
DATABASE_SCHEMES = ("sqlite", "postgresql")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def environment(name: str) -> str | None:
    """An environment variable's value (None when unset or empty)."""
    return os.environ.get(name) or None


def expand_variables(text: str) -> tuple[str, list[str]]:
    """``text`` with ``${VAR}`` and ``$VAR`` taken from the environment, and the
    names of those that are not set (left as written)."""
    unset: list[str] = []

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        found = os.environ.get(name)
        if found is None:
            unset.append(name)
            return match.group(0)
        return found

    return _VARIABLE.sub(value, text), unset


def range_problem(setting: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the number ``setting`` (None when it is right)."""
    least, most, whole = RANGES[setting]
    kind = "a whole number" if whole else "a number"
    shown = _shown(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
        return f"{shown} should be {kind} of at least {least:g}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{shown} should be a finite number of at least {least:g}"
    if value < least:
        return f"{shown} should be {kind} of at least {least:g}"
    if value > most:
        return f"{shown} is more than {most:g}, the most allowed"
    return None


def database_problem(url: str) -> str | None:
    """What is wrong with a database setting (a SQLAlchemy URL or a SQLite file path)."""
    if "://" not in url:
        return None if url.strip() else "should be a SQLite file path or a database URL"
    scheme = url.split("://", 1)[0].lower()
    if scheme.split("+", 1)[0] in DATABASE_SCHEMES:
        return None
    return (
        f"{scheme}:// is not a database we support "
        "(sqlite:///PATH, postgresql+psycopg://USER@HOST/DB, or a SQLite file path)"
    )


def url_problem(url: str) -> str | None:
    """What is wrong with a registry base URL (None when it is an http(s) URL)."""
    return None if re.match(r"^https?://[^\s/]+", url) else f"{url!r} is not an http(s) URL"


def _number(text: str) -> Any:
    """Text from the environment as a number when it is one (checked afterwards)."""
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            continue
    return text


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer of thousands of digits
        return "a number of thousands of digits"
    return text if len(text) <= 40 else text[:37] + "..."


def config_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    if environment(CONFIG_VARIABLE):
        return Path(environment(CONFIG_VARIABLE))
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load_settings(given: str | None = None, options: dict[str, Any] | None = None) -> Settings:
    """The effective settings: the file (if any), then the environment, then
    ``options`` (``{"ctgov.rate": 0.5, ...}``, given on the command line:
    ``None`` values are not given)."""
    path = config_path(given)
    if path is None:
        settings = Settings()
    else:
        from monitor.yamlconfig import read_settings

        settings = read_settings(path)
    problems: list[str] = []
    for setting, (variable, _) in OVERRIDES.items():
        text = environment(variable)
        if text is not None:
            settings = _override(settings, setting, text, variable, problems)
    for setting, value in (options or {}).items():
        if value is not None:
            settings = _override(settings, setting, value, OVERRIDES[setting][1], problems)
    if problems:
        error = ConfigError(problems[0])
        error.problems = problems
        raise error
    return settings


def _override(settings: Settings, setting: str, value: Any, origin: str, problems: list[str]) -> Settings:
    """``settings`` with ``setting`` set to ``value`` (text from the environment, or
    an option's value), checked as the file's value would be."""
    section, _, name = setting.rpartition(".")
    if setting in RANGES:
        if isinstance(value, str):
            value = _number(value)
        problem = range_problem(setting, value)
    elif setting == "database":
        problem = database_problem(value)
    elif setting == "ctgov.base_url":
        problem = url_problem(value)
    else:
        problem = None
    if problem:
        problems.append(f"{origin}: {problem}")
        return settings
    if not section:
        return replace(settings, **{name: value})
    return replace(settings, **{section: replace(getattr(settings, section), **{name: value})})


# --- showing -------------------------------------------------------------------------


def mask_secrets(text: str) -> str:
    """URLs with their secrets hidden (:func:`monitor.masking.mask_secrets`)."""
    from monitor.masking import mask_secrets

    return mask_secrets(text)


def effective(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, secrets masked."""
    return {
        "config": settings.path or "(built-in defaults)",
        "database": mask_secrets(settings.database),
        "snapshots": settings.snapshots,
        "storage": dict(settings.storage.__dict__),
        "ctgov": {**settings.ctgov.__dict__, "base_url": mask_secrets(settings.ctgov.base_url)},
        "daemon": dict(settings.daemon.__dict__),
        "limits": dict(settings.limits.__dict__),
        "schedule": settings.schedule.text,
        "watches": [
            {
                "name": g.name,
                "source": g.source,
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
