"""Reading the YAML configuration file into :class:`~monitor.config.Settings`.

The file is walked as YAML nodes, not as plain data, so that every mistake can be
reported with its file, line and YAML path; all mistakes are collected, the
first is raised (``monitor config check`` lists them all).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import fields, replace
from pathlib import Path

import yaml

from monitor import limits as _limits
from monitor.config import (
    CtgovSettings,
    DaemonSettings,
    Digest,
    NotificationSettings,
    Route,
    Schedule,
    Settings,
    StorageSettings,
    WatchGroup,
    WebSettings,
    database_problem,
    expand_variables,
    range_problem,
    url_problem,
)
from monitor.errors import ConfigError, MonitorError
from monitor.expected import Thresholds
from monitor.limits import Limits
from monitor.normalize.identity import NCT_ID
from monitor.schedules import check_schedule
from monitor.sources.registry import SOURCES, Source, known_sources
from monitor.yamlnodes import MAX_CHARACTERS, NodeReader, Refused, compose

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _trial_problem(value: str, source: type[Source]) -> str | None:
    """What is wrong with ``value`` as one of ``source``'s trial keys (None when it is one)."""
    with contextlib.suppress(MonitorError):  # its prefix in the wrong form: the same answer
        return None if source.parse_key(value) else f"{value!r} is not {source.key_hint}"
    return f"{value!r} is not {source.key_hint}"


def read_settings(path: Path) -> Settings:
    try:
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path}: not a regular file (a configuration is a YAML file)")
        if path.exists() and path.stat().st_size > MAX_CHARACTERS:
            raise ConfigError(f"{path}: larger than {MAX_CHARACTERS:,} bytes: not a configuration file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    try:
        node = compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or exc
        message = f"{where}: {problem}" if isinstance(exc, Refused) else f"{where}: not valid YAML ({problem})"
        raise ConfigError(message) from exc
    return _Reader(path).settings(node)


class _Reader(NodeReader):
    """Walks the YAML node tree, so every error can name its line."""

    def settings(self, root) -> Settings:
        if root is None:
            return Settings(path=str(self.path))
        sections = "database snapshots storage ctgov daemon schedule watches notifications expected materiality web"
        sections += " limits"
        top = self.mapping(root, "", set(sections.split()))
        defaults = Settings()
        schedule = self.schedule(top.get("schedule"), "schedule") or defaults.schedule
        watches = self.watches(top.get("watches"), schedule)
        database = self.string(top.get("database"), "database") or defaults.database
        if database_problem(database):
            self.fail(top.get("database"), "database", database_problem(database))
        settings = Settings(
            path=str(self.path),
            database=database,
            snapshots=self.string(top.get("snapshots"), "snapshots") or defaults.snapshots,
            storage=self.storage(top.get("storage")),
            ctgov=self.ctgov(top.get("ctgov")),
            daemon=self.daemon(top.get("daemon")),
            schedule=schedule,
            watches=watches,
            notifications=self.notifications(top.get("notifications"), watches),
            expected=self.expected(top.get("expected")),
            materiality=self.materiality(top.get("materiality")),
            web=self.web(top.get("web")),
            limits=self.limits(top.get("limits")),
        )
        settings = replace(settings, missing=tuple(self.missing))
        if self.problems:
            more = f" (and {len(self.problems) - 1} more: run `monitor config check`)" if len(self.problems) > 1 else ""
            error = ConfigError(self.problems[0] + more)
            error.problems = list(self.problems)
            raise error
        return settings

    # --- shapes ----------------------------------------------------------------------
    def number(self, node, where: str, default: float):
        """A number held to its range in :data:`monitor.config.RANGES` (``where`` names it)."""
        value = self.scalar(node, where)
        if value is None:
            return default
        problem = range_problem(where, value)
        if problem:
            self.fail(node, where, problem)
            return default
        return value

    def schedule(self, node, where: str) -> Schedule | None:
        text = self.string(node, where)
        if text is None:
            return None
        parsed, problem = check_schedule(text)
        if problem:
            self.fail(node, where, problem)
        return parsed

    # --- sections ----------------------------------------------------------------------

    def ctgov(self, node) -> CtgovSettings:
        found = self.mapping(
            node,
            "ctgov",
            {"base_url", "rate", "retries", "timeout", "full_refresh_days", "backfill", "backfill_per_cycle"},
        )
        d = CtgovSettings()
        base = self.string(found.get("base_url"), "ctgov.base_url") or d.base_url
        if url_problem(base):
            self.fail(found.get("base_url"), "ctgov.base_url", url_problem(base))
        numbers = {
            name: self.number(found.get(name), f"ctgov.{name}", getattr(d, name))
            for name in ("rate", "retries", "timeout", "full_refresh_days", "backfill_per_cycle")
        }
        backfill = self.boolean(found.get("backfill"), "ctgov.backfill", d.backfill)
        return CtgovSettings(base_url=base, backfill=backfill, **numbers)

    def materiality_level(self, node, where: str) -> str | None:
        from monitor.materiality import LEVELS

        level = self.string(node, where)
        if level is not None and level not in LEVELS:
            self.fail(node, where, f"{level!r} should be one of: {', '.join(reversed(LEVELS))}")
            return None
        return level

    def materiality(self, node) -> tuple[tuple[str, str], ...]:
        """Levels given to materiality rules by name (monitor.materiality)."""
        from monitor.materiality import RULE_NAMES

        found = self.mapping(node, "materiality", set(RULE_NAMES))
        levels = ((name, self.materiality_level(value, f"materiality.{name}")) for name, value in found.items())
        return tuple((name, level) for name, level in levels if level)

    def expected(self, node) -> Thresholds:
        names = ("completion_grace_days", "results_grace_days", "verification_days")
        found = self.mapping(node, "expected", set(names))
        d = Thresholds()
        return Thresholds(**{n: int(self.number(found.get(n), f"expected.{n}", getattr(d, n))) for n in names})

    def daemon(self, node) -> DaemonSettings:
        names = ("misfire_grace_seconds", "jitter_seconds", "shutdown_timeout_seconds")
        found = self.mapping(node, "daemon", set(names))
        d = DaemonSettings()
        return DaemonSettings(**{n: self.number(found.get(n), f"daemon.{n}", getattr(d, n)) for n in names})

    def limits(self, node) -> Limits:
        names = [f.name for f in fields(Limits)]
        found = self.mapping(node, "limits", set(names))
        d = _limits.DEFAULT_LIMITS
        return Limits(**{n: self.number(found.get(n), f"limits.{n}", getattr(d, n)) for n in names})

    def storage(self, node) -> StorageSettings:
        found = self.mapping(node, "storage", {"archive", "keep_raw_versions"})
        d = StorageSettings()
        return StorageSettings(
            archive=self.boolean(found.get("archive"), "storage.archive", d.archive),
            keep_raw_versions=int(
                self.number(found.get("keep_raw_versions"), "storage.keep_raw_versions", d.keep_raw_versions)
            ),
        )

    def web(self, node) -> WebSettings:
        found = self.mapping(node, "web", {"host", "port", "token", "username", "password"})
        d = WebSettings()
        secrets = {}
        for key in ("token", "username", "password"):
            value = self.string(found.get(key), f"web.{key}")
            if value is not None:
                value, unset = expand_variables(value)
                if unset:
                    self.fail(found.get(key), f"web.{key}", f"names an unset environment variable: {unset[0]}")
                    value = None
            secrets[key] = value or None
        if bool(secrets["username"]) != bool(secrets["password"]):
            self.fail(node, "web", "username and password go together")
        return WebSettings(
            host=self.string(found.get("host"), "web.host") or d.host,
            port=int(self.number(found.get("port"), "web.port", d.port)),
            **secrets,
        )

    def watches(self, node, default: Schedule) -> tuple[WatchGroup, ...]:
        if node is None:
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, "watches", "should be a list of watch groups")
            return ()
        if not self.plain(node, "watches"):
            return ()
        groups: list[WatchGroup] = []
        seen: set[str] = set()
        for i, item in enumerate(node.value):
            where = f"watches[{i}]"
            problems_before = len(self.problems)
            found = self.mapping(item, where, {"name", "source", "trials", "queries", "snapshots", "schedule"})
            name = self.string(found.get("name"), f"{where}.name") or f"group-{i + 1}"
            if not _NAME.match(name):
                self.fail(found.get("name"), f"{where}.name", f"{name!r} should be letters, digits, '-', '_' or '.'")
            elif name in seen:
                self.fail(found.get("name"), f"{where}.name", f"{name!r} is used by an earlier watch group")
            seen.add(name)
            source = self.source(found, where)
            trials = []
            for j, (value, value_node) in enumerate(self.strings(found.get("trials"), f"{where}.trials")):
                problem = _trial_problem(value, source)
                if problem:
                    self.fail(value_node, f"{where}.trials[{j}]", problem)
                else:
                    trials.append(source.parse_key(value))
            queries = []
            for j, (value, value_node) in enumerate(self.strings(found.get("queries"), f"{where}.queries")):
                from monitor.errors import UsageError
                from monitor.sources.ctgov import parse_query

                try:
                    if not source.searches:
                        raise UsageError(f"{source.title} has no saved searches")
                    parse_query(value)
                    queries.append(value)
                except UsageError as exc:
                    self.fail(value_node, f"{where}.queries[{j}]", exc.message.removeprefix(f"{value!r}: "))
            snapshots = []
            for j, (value, value_node) in enumerate(self.strings(found.get("snapshots"), f"{where}.snapshots")):
                snapshots.append(value)
                if not Path(value).exists():
                    self.missing.append(
                        self.problem(value_node, f"{where}.snapshots[{j}]", f"{value!r}: no such file or folder")
                    )
            if not (trials or queries or snapshots) and len(self.problems) == problems_before:
                self.fail(item, where, "watches nothing: give it trials, queries or snapshots")
            schedule = self.schedule(found.get("schedule"), f"{where}.schedule") or default
            named = source.name if "source" in found else ""  # not given: inferred from its keys
            groups.append(WatchGroup(name, schedule, tuple(trials), tuple(queries), tuple(snapshots), named))
        return tuple(groups)

    def source(self, found: dict, where: str) -> type[Source]:
        """The group's source (``source: ctgov``); not given, ClinicalTrials.gov's rules check its trials."""
        name = self.string(found.get("source"), f"{where}.source")
        if name is not None and name not in SOURCES:
            self.fail(found.get("source"), f"{where}.source", f"{name!r} is not a source (one of: {known_sources()})")
        elif name == "files" and ("trials" in found or "queries" in found):
            self.fail(found.get("source"), f"{where}.source", "files reads snapshots: give it snapshots, not trials")
        return SOURCES.get(name or "ctgov", SOURCES["ctgov"])

    def notifications(self, node, groups: tuple[WatchGroup, ...]) -> NotificationSettings:
        found = self.mapping(node, "notifications", {"routes", "apprise_config", "templates", "max_age_hours"})
        d = NotificationSettings()
        apprise_config = self.string(found.get("apprise_config"), "notifications.apprise_config")
        if apprise_config and not Path(apprise_config).is_file():
            where, message = "notifications.apprise_config", f"{apprise_config!r}: no such file"
            self.missing.append(self.problem(found.get("apprise_config"), where, message))
        templates = self.string(found.get("templates"), "notifications.templates")
        if templates and not Path(templates).is_dir():
            self.fail(found.get("templates"), "notifications.templates", f"{templates!r} is not a folder")
        max_age = self.number(found.get("max_age_hours"), "notifications.max_age_hours", d.max_age_hours)
        node = found.get("routes")
        if node is None:
            return NotificationSettings((), apprise_config, templates, max_age)
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, "notifications.routes", "should be a list of routes")
            return NotificationSettings((), apprise_config, templates, max_age)
        if not self.plain(node, "notifications.routes"):
            return NotificationSettings((), apprise_config, templates, max_age)
        routes: list[Route] = []
        names = {g.name for g in groups}
        for i, item in enumerate(node.value):
            route = self.route(item, f"notifications.routes[{i}]", names, apprise_config, {r.name for r in routes})
            if route:
                routes.append(route)
        return NotificationSettings(tuple(routes), apprise_config, templates, max_age)

    def route(self, item, where: str, groups: set[str], apprise_config: str | None, taken: set[str]) -> Route | None:
        from monitor.model import Category

        problems_before = len(self.problems)
        found = self.mapping(
            item,
            where,
            {
                "name",
                "urls",
                "tags",
                "watches",
                "trials",
                "categories",
                "min_severity",
                "min_materiality",
                "digest",
                "at",
                "weekday",
                "format",
            },
        )
        name = self.string(found.get("name"), f"{where}.name")
        if not name:
            self.fail(item, where, "needs a name")
            return None
        if name in taken:
            self.fail(found.get("name"), f"{where}.name", f"{name!r} is used by an earlier route")
        urls = []
        for j, (url, url_node) in enumerate(self.strings(found.get("urls"), f"{where}.urls")):
            expanded, unset = expand_variables(url)
            if unset:
                names = " and ".join(f"${{{name}}}" for name in unset)
                self.fail(url_node, f"{where}.urls[{j}]", f"names an environment variable that is not set: {names}")
                continue
            from monitor.notify import is_apprise_url

            if not is_apprise_url(expanded):
                self.fail(url_node, f"{where}.urls[{j}]", "is not a URL Apprise can send to")
                continue
            urls.append(expanded)
        tags = [t for t, _ in self.strings(found.get("tags"), f"{where}.tags")]
        if tags and not apprise_config:
            self.fail(
                found.get("tags"), f"{where}.tags", "tags need notifications.apprise_config (an Apprise config file)"
            )
        if not urls and not tags and len(self.problems) == problems_before:
            self.fail(item, where, "sends nowhere: give it urls (Apprise URLs) or tags")
        watches = []
        for j, (group, group_node) in enumerate(self.strings(found.get("watches"), f"{where}.watches")):
            if group in groups:
                watches.append(group)
            else:
                self.fail(group_node, f"{where}.watches[{j}]", f"{group!r} is not a watch group's name")
        trials = []
        for j, (trial, trial_node) in enumerate(self.strings(found.get("trials"), f"{where}.trials")):
            if NCT_ID.fullmatch(trial.strip().upper()):
                trials.append(trial.strip().upper())
            else:
                self.fail(trial_node, f"{where}.trials[{j}]", f"{trial!r} is not an NCT id (NCT followed by 8 digits)")
        vocabulary = [c.value for c in Category]
        categories = []
        for j, (category, category_node) in enumerate(self.strings(found.get("categories"), f"{where}.categories")):
            if category in vocabulary:
                categories.append(category)
            else:
                self.fail(
                    category_node,
                    f"{where}.categories[{j}]",
                    f"{category!r} is not a category (one of: {', '.join(vocabulary)})",
                )
        severity = self.string(found.get("min_severity"), f"{where}.min_severity") or "minor"
        if severity not in ("minor", "major"):
            self.fail(found.get("min_severity"), f"{where}.min_severity", f"{severity!r} should be minor or major")
        materiality = self.materiality_level(found.get("min_materiality"), f"{where}.min_materiality") or "noise"
        digest = None
        period = self.string(found.get("digest"), f"{where}.digest")
        if period:
            at = self.string(found.get("at"), f"{where}.at") or ("00" if period == "hourly" else "08:00")
            weekday = (self.string(found.get("weekday"), f"{where}.weekday") or "mon").lower()[:3]
            if period not in ("hourly", "daily", "weekly"):
                self.fail(found.get("digest"), f"{where}.digest", f"{period!r} should be hourly, daily or weekly")
            elif not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d" if period != "hourly" else r"[0-5]?\d", at):
                self.fail(
                    found.get("at"),
                    f"{where}.at",
                    f"{at!r} should be HH:MM" + (" (for hourly: MM)" if period == "hourly" else ""),
                )
            elif weekday not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
                self.fail(found.get("weekday"), f"{where}.weekday", f"{weekday!r} should be a day of the week")
            else:
                digest = Digest(period, at, weekday)
        fmt = self.string(found.get("format"), f"{where}.format")
        if fmt and fmt not in ("text", "markdown", "html", "json"):
            self.fail(found.get("format"), f"{where}.format", f"{fmt!r} should be text, markdown, html or json")
        return Route(
            name,
            tuple(urls),
            tuple(tags),
            tuple(watches),
            tuple(trials),
            tuple(categories),
            severity,
            digest,
            fmt,
            min_materiality=materiality,
        )
