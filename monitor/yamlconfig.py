"""Reading the YAML configuration file into :class:`~monitor.config.Settings`.

The file is walked as YAML nodes, not as plain data, so that every mistake can be
reported with its file, line and YAML path; all mistakes are collected, the
first is raised (``monitor config check`` lists them all).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from monitor.config import (
    CtgovSettings,
    DaemonSettings,
    Digest,
    NotificationSettings,
    Route,
    Schedule,
    Settings,
    WatchGroup,
    WebSettings,
    parse_schedule,
)
from monitor.errors import ConfigError
from monitor.normalize.identity import NCT_ID

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def read_settings(path: Path) -> Settings:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    return _Reader(path).settings(node)


class _Reader:
    """Walks the YAML node tree, so every error can name its line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def fail(self, node, where: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.path}:{line}: {where}: {message}" if where else f"{self.path}:{line}: {message}")

    def settings(self, root) -> Settings:
        if root is None:
            return Settings(path=str(self.path))
        top = self.mapping(
            root,
            "",
            {
                "database",
                "snapshots",
                "ctgov",
                "daemon",
                "schedule",
                "watches",
                "notifications",
                "web",
            },
        )
        defaults = Settings()
        schedule = self.schedule(top.get("schedule"), "schedule") or defaults.schedule
        watches = self.watches(top.get("watches"), schedule)
        settings = Settings(
            path=str(self.path),
            database=self.string(top.get("database"), "database") or defaults.database,
            snapshots=self.string(top.get("snapshots"), "snapshots") or defaults.snapshots,
            ctgov=self.ctgov(top.get("ctgov")),
            daemon=self.daemon(top.get("daemon")),
            schedule=schedule,
            watches=watches,
            notifications=self.notifications(top.get("notifications"), watches),
            web=self.web(top.get("web")),
        )
        if self.problems:
            more = f" (and {len(self.problems) - 1} more: run `monitor config check`)" if len(self.problems) > 1 else ""
            error = ConfigError(self.problems[0] + more)
            error.problems = list(self.problems)
            raise error
        return settings

    # --- shapes ----------------------------------------------------------------------

    def mapping(self, node, where: str, allowed: set[str]) -> dict[str, Any]:
        if node is None:
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, where, "should be a mapping of settings")
            return {}
        found = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.fail(key_node, _join(where, key), f"is not a setting here (expected one of: {hint})")
                continue
            found[key] = value_node
        return found

    def scalar(self, node, where: str):
        if node is None:
            return None
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, where, "should be a single value")
            return None
        return yaml.safe_load(yaml.serialize(node))

    def string(self, node, where: str) -> str | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.fail(node, where, f"{value!r} should be text")
            return None
        return str(value)

    def number(self, node, where: str, default: float, minimum: float = 0, integer: bool = False):
        value = self.scalar(node, where)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < minimum
            or (integer and not isinstance(value, int))
        ):
            kind = "a whole number" if integer else "a number"
            self.fail(node, where, f"{value!r} should be {kind} of at least {minimum:g}")
            return default
        return value

    def boolean(self, node, where: str, default: bool) -> bool:
        value = self.scalar(node, where)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(node, where, f"{value!r} should be true or false")
            return default
        return value

    def strings(self, node, where: str) -> list[tuple[str, Any]]:
        """A list of text values (a single value counts as a list of one), with their nodes."""
        if node is None:
            return []
        if isinstance(node, yaml.ScalarNode):
            value = self.string(node, where)
            return [(value, node)] if value else []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, where, "should be a list")
            return []
        out = []
        for i, item in enumerate(node.value):
            value = self.string(item, f"{where}[{i}]")
            if value:
                out.append((value, item))
        return out

    def schedule(self, node, where: str) -> Schedule | None:
        text = self.string(node, where)
        if text is None:
            return None
        parsed = parse_schedule(text)
        if parsed is None:
            self.fail(node, where, f"{text!r} is not an interval or cron expression")
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
        if not re.match(r"^https?://[^\s/]+", base):
            self.fail(found.get("base_url"), "ctgov.base_url", f"{base!r} is not an http(s) URL")
        return CtgovSettings(
            base_url=base,
            rate=self.number(found.get("rate"), "ctgov.rate", d.rate),
            retries=self.number(found.get("retries"), "ctgov.retries", d.retries, integer=True),
            timeout=self.number(found.get("timeout"), "ctgov.timeout", d.timeout, minimum=1),
            full_refresh_days=self.number(
                found.get("full_refresh_days"), "ctgov.full_refresh_days", d.full_refresh_days, minimum=1
            ),
            backfill=self.boolean(found.get("backfill"), "ctgov.backfill", d.backfill),
            backfill_per_cycle=self.number(
                found.get("backfill_per_cycle"), "ctgov.backfill_per_cycle", d.backfill_per_cycle, integer=True
            ),
        )

    def daemon(self, node) -> DaemonSettings:
        found = self.mapping(node, "daemon", {"misfire_grace_seconds", "jitter_seconds", "shutdown_timeout_seconds"})
        d = DaemonSettings()
        return DaemonSettings(
            misfire_grace_seconds=self.number(
                found.get("misfire_grace_seconds"),
                "daemon.misfire_grace_seconds",
                d.misfire_grace_seconds,
                minimum=1,
                integer=True,
            ),
            jitter_seconds=self.number(
                found.get("jitter_seconds"), "daemon.jitter_seconds", d.jitter_seconds, integer=True
            ),
            shutdown_timeout_seconds=self.number(
                found.get("shutdown_timeout_seconds"),
                "daemon.shutdown_timeout_seconds",
                d.shutdown_timeout_seconds,
                minimum=1,
                integer=True,
            ),
        )

    def web(self, node) -> WebSettings:
        found = self.mapping(node, "web", {"host", "port", "token", "username", "password"})
        d = WebSettings()
        secrets = {}
        for key in ("token", "username", "password"):
            value = self.string(found.get(key), f"web.{key}")
            if value is not None:
                value = os.path.expandvars(value)
                if "$" in value:
                    self.fail(found.get(key), f"web.{key}", "names an environment variable that is not set")
                    value = None
            secrets[key] = value or None
        if bool(secrets["username"]) != bool(secrets["password"]):
            self.fail(node, "web", "username and password go together")
        return WebSettings(
            host=self.string(found.get("host"), "web.host") or d.host,
            port=self.number(found.get("port"), "web.port", d.port, minimum=1, integer=True),
            **secrets,
        )

    def watches(self, node, default: Schedule) -> tuple[WatchGroup, ...]:
        if node is None:
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, "watches", "should be a list of watch groups")
            return ()
        groups: list[WatchGroup] = []
        seen: set[str] = set()
        for i, item in enumerate(node.value):
            where = f"watches[{i}]"
            problems_before = len(self.problems)
            found = self.mapping(item, where, {"name", "trials", "queries", "snapshots", "schedule"})
            name = self.string(found.get("name"), f"{where}.name") or f"group-{i + 1}"
            if not _NAME.match(name):
                self.fail(found.get("name"), f"{where}.name", f"{name!r} should be letters, digits, '-', '_' or '.'")
            elif name in seen:
                self.fail(found.get("name"), f"{where}.name", f"{name!r} is used by an earlier watch group")
            seen.add(name)
            trials = []
            for j, (value, value_node) in enumerate(self.strings(found.get("trials"), f"{where}.trials")):
                if NCT_ID.fullmatch(value.strip().upper()):
                    trials.append(value.strip().upper())
                else:
                    self.fail(
                        value_node, f"{where}.trials[{j}]", f"{value!r} is not an NCT id (NCT followed by 8 digits)"
                    )
            queries = []
            for j, (value, value_node) in enumerate(self.strings(found.get("queries"), f"{where}.queries")):
                from monitor.errors import UsageError
                from monitor.sources.ctgov import parse_query

                try:
                    parse_query(value)
                    queries.append(value)
                except UsageError as exc:
                    self.fail(value_node, f"{where}.queries[{j}]", exc.message.removeprefix(f"{value!r}: "))
            snapshots = [v for v, _ in self.strings(found.get("snapshots"), f"{where}.snapshots")]
            if not (trials or queries or snapshots) and len(self.problems) == problems_before:
                self.fail(item, where, "watches nothing: give it trials, queries or snapshots")
            schedule = self.schedule(found.get("schedule"), f"{where}.schedule") or default
            groups.append(WatchGroup(name, schedule, tuple(trials), tuple(queries), tuple(snapshots)))
        return tuple(groups)

    def notifications(self, node, groups: tuple[WatchGroup, ...]) -> NotificationSettings:
        found = self.mapping(node, "notifications", {"routes", "apprise_config", "templates", "max_age_hours"})
        d = NotificationSettings()
        apprise_config = self.string(found.get("apprise_config"), "notifications.apprise_config")
        templates = self.string(found.get("templates"), "notifications.templates")
        if templates and not Path(templates).is_dir():
            self.fail(found.get("templates"), "notifications.templates", f"{templates!r} is not a folder")
        max_age = self.number(found.get("max_age_hours"), "notifications.max_age_hours", d.max_age_hours, minimum=1)
        node = found.get("routes")
        if node is None:
            return NotificationSettings((), apprise_config, templates, max_age)
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, "notifications.routes", "should be a list of routes")
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
            expanded = os.path.expandvars(url)
            if "$" in expanded:
                self.fail(url_node, f"{where}.urls[{j}]", "names an environment variable that is not set")
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
            name, tuple(urls), tuple(tags), tuple(watches), tuple(trials), tuple(categories), severity, digest, fmt
        )


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
