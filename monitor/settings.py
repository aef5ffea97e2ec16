"""The settings model: every setting declared once, with its kind, range, default and display.

Each section is a frozen pydantic dataclass; a setting is one line
(``retries: Whole(0, 20) = 5``).  :mod:`monitor.config` fills it from the file, the
environment and the command line and reports what is wrong; :func:`effective` shows it.
The YAML keys are the field names, in this order (``monitor config check`` keeps it).
"""

from __future__ import annotations

import re
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator, field_validator, model_validator
from pydantic.dataclasses import dataclass

from monitor import limits as _limits
from monitor.apprise_urls import is_apprise_url
from monitor.errors import ConfigError, UsageError
from monitor.expected import Thresholds
from monitor.limits import Limits
from monitor.materiality import LEVELS, RULE_NAMES
from monitor.model import Category
from monitor.normalize.identity import NCT_ID
from monitor.schedules import Schedule, parse_schedule
from monitor.settingtypes import (
    Checked,
    Choice,
    Flag,
    Number,
    Pattern,
    Shown,
    Text,
    Texts,
    When,
    Whole,
    as_text,
    problem,
)
from monitor.sources.queries import parse_query
from monitor.sources.registry import SOURCES  # the words `source:` takes

DEFAULT_SCHEDULE = "every 6 hours"
DATABASE_SCHEMES = ("sqlite", "postgresql")
SECTION = ConfigDict(extra="forbid")


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


def _database(value: Any) -> str:
    text = as_text(value)
    found = database_problem(text)
    if found:
        raise problem(found)
    return text


def _query(value: Any) -> str:
    text = as_text(value)
    try:
        parse_query(text)
    except UsageError as exc:
        raise problem(exc.message.removeprefix(f"{text!r}: ")) from None
    return text


def _apprise_url(value: Any) -> str:
    text = as_text(value)
    if not is_apprise_url(text):
        raise problem("is not a URL Apprise can send to")
    return text


def _levels(value: Any) -> tuple[tuple[str, str], ...]:
    """``{rule: level}`` as the (rule, level) pairs :class:`monitor.materiality.Materiality` takes."""
    if isinstance(value, tuple):
        return value
    if not isinstance(value, dict):
        raise problem("should be a mapping of settings")
    for name, level in value.items():
        if name not in RULE_NAMES:
            raise problem(f"is not a setting here (expected one of: {', '.join(sorted(RULE_NAMES))})", name)
        _level(level, name)
    return tuple(value.items())


def _level(value: Any, *at: str) -> str:
    if value not in LEVELS:
        raise problem(f"{value!r} should be one of: {', '.join(reversed(LEVELS))}", *at)
    return value


NctId = Checked(lambda t: NCT_ID.fullmatch(t.strip().upper()), "{value!r} is not an NCT id (NCT followed by 8 digits)")
Level = Annotated[str, PlainValidator(lambda v: _level(v))]
Url = Pattern(r"https?://[^\x00-\x20\x7f/]+[^\x00-\x20\x7f]*", "{value!r} is not an http(s) URL")  # no space or control
Secret = Annotated[Text | None, Shown("secret")]
Name = Pattern(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "{value!r} should be letters, digits, '-', '_' or '.'")


def _upper(ids: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(i.strip().upper() for i in ids)


def _keys(source, values: tuple[str, ...]) -> tuple[str, ...]:
    """``values`` as the canonical keys of ``source`` (``nct06518668`` -> ``NCT06518668``)."""
    keys = []
    for i, value in enumerate(values):
        try:
            key = source.parse_key(value)
        except UsageError:
            key = None
        if not key:
            raise problem(f"{value!r} is not {source.key_hint}", "trials", i)
        keys.append(key)
    return tuple(keys)


def _searches(source, queries: tuple[str, ...]) -> None:
    for i, query in enumerate(queries):
        if not source.searches:
            raise problem(f"{source.title} has no saved searches", "queries", i)
        try:
            parse_query(query)
        except UsageError as exc:
            raise problem(exc.message.removeprefix(f"{query!r}: "), "queries", i) from None


@dataclass(frozen=True, config=SECTION)
class WatchGroup:
    """What one job watches, from one source, on one schedule."""

    name: Name
    schedule: When = parse_schedule(DEFAULT_SCHEDULE)  # the settings' own schedule when not given
    trials: Texts() = ()  # keys of the group's source (checked by it: NCT ids for ctgov)
    queries: Texts() = ()  # saved searches, for a source that has them
    snapshots: Texts() = ()
    # not given: inferred from the keys (snapshots alone: files; trials or queries: ctgov)
    source: Text | None = None  # a word of monitor.sources.registry.SOURCES, read when checked
    all: Flag | None = None  # true: the whole registry (ctgov): loaded over the first cycles, then what changed

    @model_validator(mode="after")
    def _source(self):
        if self.all:
            return self._whole_registry()
        if not (self.trials or self.queries or self.snapshots):
            raise problem("watches nothing: give it trials, queries or snapshots (or all: true, the whole registry)")
        registry = self.trials or self.queries
        if self.source is None:  # inferred from the keys, as before `source:` existed
            object.__setattr__(self, "source", "files" if self.snapshots and not registry else "ctgov")
        elif self.source not in SOURCES:
            raise problem(f"{self.source!r} is not a source (known: {', '.join(SOURCES)})", "source")
        elif self.source == "files" and registry:  # snapshots beside trials stay read by ctgov, as before
            raise problem("the source files does not read trials or queries (the source ctgov does)", "source")
        elif self.source != "files" and not registry:
            raise problem(f"the source {self.source} does not read snapshots (the source files does)", "source")
        if self.source != "files":
            object.__setattr__(self, "trials", _keys(SOURCES[self.source], self.trials))
            _searches(SOURCES[self.source], self.queries)
        return self

    def _whole_registry(self):
        for key in ("trials", "queries", "snapshots"):
            if getattr(self, key):
                raise problem(f"all: true watches every trial already; put {key} in a watch group of their own", key)
        if self.source not in (None, "ctgov"):
            raise problem(f"the source {self.source} cannot watch a whole registry (the source ctgov can)", "source")
        object.__setattr__(self, "source", "ctgov")
        return self

    @property
    def kind(self) -> str:
        return "snapshots" if self.source == "files" else "ctgov"


@dataclass(frozen=True, config=SECTION)
class Route:
    """Who hears what: Apprise URLs (or tags of an Apprise config file) and the
    rules that select the changes they get."""

    name: Text
    urls: Annotated[Texts(Annotated[str, PlainValidator(_apprise_url)]), Shown("apprise")] = ()
    tags: Texts() = ()
    watches: Texts() = ()  # watch group names; empty: every group
    trials: Texts(NctId) = ()  # NCT ids; empty: every trial
    categories: Texts(
        Choice([c.value for c in Category], "{value!r} is not a category (one of: " + ", ".join(Category) + ")")
    ) = ()  # empty: every category
    min_severity: Choice(("minor", "major"), "{value!r} should be minor or major") = "minor"
    min_materiality: Level = "noise"  # noise | low | medium | high (monitor.materiality)
    format: Choice(("text", "markdown", "html", "json"), "{value!r} should be text, markdown, html or json") | None = (
        None  # monitor.webhook; default by the URL's kind
    )
    digest: Choice(("hourly", "daily", "weekly"), "{value!r} should be hourly, daily or weekly") | None = None
    at: Text | None = None  # HH:MM, UTC (the minute only, for hourly); default 08:00 (00 for hourly)
    weekday: Text | None = None  # for weekly; default mon

    _ids = field_validator("trials")(classmethod(lambda cls, ids: _upper(ids)))

    @model_validator(mode="after")
    def _digest(self):
        if not self.urls and not self.tags:
            raise problem("sends nowhere: give it urls (Apprise URLs) or tags")
        if not self.digest:
            return self
        hourly = self.digest == "hourly"
        at = self.at or ("00" if hourly else "08:00")
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d" if not hourly else r"[0-5]?\d", at):
            raise problem(f"{at!r} should be HH:MM" + (" (for hourly: MM)" if hourly else ""), "at")
        weekday = (self.weekday or "mon").lower()[:3]
        if weekday not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
            raise problem(f"{weekday!r} should be a day of the week", "weekday")
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "weekday", weekday if self.digest == "weekly" else None)
        return self


@dataclass(frozen=True, config=SECTION)
class CtgovSettings:
    base_url: Annotated[Url, Shown("url")] = "https://clinicaltrials.gov/api/v2"
    rate: Number(0, 100) = 1.0  # requests per second, at most; 0: no limit
    retries: Whole(0, 20) = 5
    timeout: Number(1, 3600) = 60.0
    full_refresh_days: Number(1, 366) = 7.0
    backfill: Flag = True
    backfill_per_cycle: Whole(0, 10_000) = 10
    load_pages_per_cycle: Whole(1, 100_000) = 25  # pages of the whole registry's first load a cycle
    load_page_size: Whole(1, 1_000) = 200  # studies a page in that load (about 4 MB a page at 200)


@dataclass(frozen=True, config=SECTION)
class DaemonSettings:
    misfire_grace_seconds: Whole(1, 86_400) = 300
    jitter_seconds: Whole(0, 86_400) = 0
    shutdown_timeout_seconds: Whole(1, 3_600) = 30


def _folder(value: Any) -> str:
    text = as_text(value)
    if not Path(text).is_dir():
        raise problem(f"{text!r} is not a folder")
    return text


@dataclass(frozen=True, config=SECTION)
class NotificationSettings:
    apprise_config: Text | None = None  # an Apprise config file, for routes' tags
    templates: Annotated[str, PlainValidator(_folder)] | None = None  # templates that override the built-in ones
    max_age_hours: Number(1, 8_784) = 48.0  # retry a failing delivery this long, then mark it failed
    routes: Annotated[tuple[Route, ...], Field(title="routes")] = ()

    def route(self, name: str) -> Route:
        for route in self.routes:
            if route.name == name:
                return route
        raise ConfigError(f"no route named {name!r} (routes: {', '.join(r.name for r in self.routes) or 'none'})")


@dataclass(frozen=True, config=SECTION)
class WebSettings:
    """`monitor serve`: where it listens and, off loopback, the credentials it requires."""

    host: Text = "127.0.0.1"
    port: Whole(1, 65_535) = 8080
    token: Secret = None  # a bearer token (``Authorization: Bearer ...`` or ``?token=...``)
    username: Text | None = None  # HTTP basic auth, with ``password``
    password: Secret = None

    @model_validator(mode="after")
    def _pair(self):
        if bool(self.username) != bool(self.password):
            raise problem("username and password go together")
        return self


@dataclass(frozen=True, config=SECTION)
class StorageSettings:
    """Where raw payloads are kept: once, compressed in the database, by default."""

    archive: Flag = False  # also write every fetched payload to the gzip archive under `snapshots`
    keep_raw_versions: Whole(0, 1_000_000) = 0  # each trial's newest N raw payloads (0: all); records stay


@dataclass(frozen=True, config=SECTION)
class Settings:
    path: Annotated[str | None, Shown("hidden")] = None  # the file read (None: the built-in defaults)
    database: Annotated[str, PlainValidator(_database), Shown("url")] = "sqlite:///monitor.db"
    snapshots: Text = "snapshots"
    storage: StorageSettings = StorageSettings()
    ctgov: CtgovSettings = CtgovSettings()
    daemon: DaemonSettings = DaemonSettings()
    # bounds on files, registry answers, JSON: monitor.limits (its defaults read when settings are made)
    limits: Limits = field(default_factory=lambda: _limits.DEFAULT_LIMITS)
    schedule: When = parse_schedule(DEFAULT_SCHEDULE)  # each watch group's, unless it has its own
    watches: Annotated[tuple[WatchGroup, ...], Field(title="watch groups")] = ()
    notifications: NotificationSettings = NotificationSettings()
    expected: Thresholds = Thresholds()  # the expected-event rules (monitor.expected)
    materiality: Annotated[tuple[tuple[str, str], ...], PlainValidator(_levels)] = ()  # (rule, level) pairs
    web: WebSettings = WebSettings()
    # Files and folders named that do not exist (`file:line: path: message`): `config check`
    # and `run` refuse them (see require_files); other commands need none.
    missing: Annotated[tuple[str, ...], Shown("hidden")] = field(default=(), compare=False, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _group_defaults(cls, data: Any) -> Any:
        """A watch group without a name is ``group-N``; without a schedule, it has the settings' own."""
        if not isinstance(data, dict) or not isinstance(data.get("watches"), list | tuple):
            return data
        default = data.get("schedule", DEFAULT_SCHEDULE)
        inherited = {"schedule": default} if isinstance(default, Schedule) or parse_schedule(str(default)) else {}
        groups = [
            {"name": f"group-{i}", **inherited, **g} if isinstance(g, dict) else g
            for i, g in enumerate(data["watches"], 1)
        ]
        return {**data, "watches": groups}

    @model_validator(mode="after")
    def _references(self):
        _unique([g.name for g in self.watches], "watches", "watch group")
        whole = [i for i, g in enumerate(self.watches) if g.all]
        if len(whole) > 1:
            raise problem("only one watch group can watch the whole registry (all: true)", "watches", whole[1], "all")
        _unique([r.name for r in self.notifications.routes], "notifications.routes", "route")
        names = {g.name for g in self.watches}
        for i, route in enumerate(self.notifications.routes):
            at = ("notifications", "routes", i)
            for j, group in enumerate(route.watches):
                if group not in names:
                    raise problem(f"{group!r} is not a watch group's name", *at, "watches", j)
            if route.tags and not self.notifications.apprise_config:
                raise problem("tags need notifications.apprise_config (an Apprise config file)", *at, "tags")
        return self

    def absent(self) -> list[tuple[tuple, str]]:
        """The files and folders named that do not exist: (where, message)."""
        found = [
            (("watches", i, "snapshots", j), f"{name!r}: no such file or folder")
            for i, group in enumerate(self.watches)
            for j, name in enumerate(group.snapshots)
            if not Path(name).exists()
        ]
        apprise_config = self.notifications.apprise_config
        if apprise_config and not Path(apprise_config).is_file():
            found.append((("notifications", "apprise_config"), f"{apprise_config!r}: no such file"))
        return found

    def require_files(self) -> None:
        """A ConfigError listing the missing files and folders, if any."""
        if self.missing:
            more = f" (and {len(self.missing) - 1} more: run `monitor config check`)" if len(self.missing) > 1 else ""
            error = ConfigError(self.missing[0] + more)
            error.problems = list(self.missing)
            raise error

    def group(self, name: str) -> WatchGroup:
        for group in self.watches:
            if group.name == name:
                return group
        raise ConfigError(f"no watch group named {name!r} in {self.path or 'the configuration'}")


def _unique(names: list[str], where: str, what: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise problem(f"{name!r} is used by an earlier {what}", *where.split("."), i, "name")
