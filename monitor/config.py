"""The configuration: one YAML file, the environment and the command line, applied in one
place (:func:`load_settings`) to the settings model (:mod:`monitor.settings`).

Which file: ``--config``, else ``MONITOR_CONFIG``, else ``config/monitor.yaml``
in the working directory when it exists, else the model's defaults (no watches).
Relative paths in the file are relative to the working directory.

Precedence: an option on the command line over the environment over the file
over the defaults. The environment is read here only (:func:`environment`):
``MONITOR_DB`` (database), ``MONITOR_SNAPSHOTS`` (archive folder),
``MONITOR_CTGOV_URL``, ``MONITOR_CTGOV_RATE``, ``MONITOR_CTGOV_RETRIES``, and
``${VAR}`` in notification URLs and the web section's credentials.  Every value is
validated once, by the model, wherever it comes from.

Every mistake is reported with the file, line and YAML path of the value
(:mod:`monitor.yamlconfig` reads the file), or the variable or option that gave it::

    config/monitor.yaml:14: watches[2].schedule: 'every 5 minuts' is not an interval or cron expression
    MONITOR_CTGOV_RATE: 'fast' should be a number of at least 0
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from monitor.errors import ConfigError
from monitor.masking import mask_secrets  # noqa: F401 (re-exported)
from monitor.schedules import Schedule, check_schedule, cron_fields, parse_schedule  # noqa: F401 (re-exported)
from monitor.settings import (  # noqa: F401 (re-exported: the settings' names callers know)
    DEFAULT_SCHEDULE,
    CtgovSettings,
    DaemonSettings,
    NotificationSettings,
    Route,
    Settings,
    WatchGroup,
    WebSettings,
)
from monitor.settingsview import declared_at, effective  # noqa: F401 (effective: re-exported)
from monitor.yamlconfig import HIDDEN, objection, placed, read_file

DEFAULT_PATH = Path("config") / "monitor.yaml"
CONFIG_VARIABLE = "MONITOR_CONFIG"
# The settings the environment and the command line may set: (variable, option).
OVERRIDES = {
    "database": ("MONITOR_DB", "--db"),
    "snapshots": ("MONITOR_SNAPSHOTS", "--snapshots"),
    "ctgov.base_url": ("MONITOR_CTGOV_URL", "--ctgov-url"),
    "ctgov.rate": ("MONITOR_CTGOV_RATE", "--rate"),
    "ctgov.retries": ("MONITOR_CTGOV_RETRIES", "--retries"),
}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SETTINGS = TypeAdapter(Settings)


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


def config_path(given: str | None) -> Path | None:
    if given:
        return Path(given)
    if environment(CONFIG_VARIABLE):
        return Path(environment(CONFIG_VARIABLE))
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load_settings(given: str | None = None, options: dict[str, Any] | None = None) -> Settings:
    """The effective settings: the file (if any), then the environment, then
    ``options`` (``{"ctgov.rate": 0.5, ...}``, given on the command line:
    ``None`` values are not given), validated once by the settings model."""
    path = config_path(given)
    data, reader = ({}, None) if path is None else read_file(path)
    origins: dict[tuple, str] = {}  # where -> the variable or option that set it
    found_in_file = reader.problems if reader else []
    problems = [placed(path, reader, where, message, origins, node) for node, where, message in found_in_file]
    for name in HIDDEN:
        if data.pop(name, None) is not None:
            problems.append(placed(path, reader, (name,), _not_here(), origins))
    overridden = {}  # the file's values the environment or an option replaces: checked all the same
    for setting, (variable, option) in OVERRIDES.items():
        where = tuple(setting.split("."))
        for origin, value in ((variable, environment(variable)), (option, (options or {}).get(setting))):
            if value is not None:
                if where not in origins and _get(data, where) is not None:
                    _put(overridden, where, _get(data, where))
                _put(data, where, _number(value) if origin == variable and _numeric(where) else value)
                origins[where] = origin
    failed = _expand_secrets(data)
    problems += [placed(path, reader, where, message, origins) for where, message in failed.items()]
    for where, message in _validated(overridden)[1] if overridden else ():
        if where in origins:
            problems.append(placed(path, reader, where, message, {}))
    settings, found = _validated({**data, "path": str(path) if path else None})
    problems += [placed(path, reader, where, m, origins) for where, m in found if where not in failed]
    if problems:
        problems.sort(key=_line)
        more = f" (and {len(problems) - 1} more: run `monitor config check`)" if len(problems) > 1 else ""
        error = ConfigError(problems[0] + more)
        error.problems = problems
        raise error
    missing = tuple(placed(path, reader, where, message, {}) for where, message in settings.absent())
    return replace(settings, missing=missing) if missing else settings


def _validated(data: dict) -> tuple[Settings | None, list[tuple[tuple, str]]]:
    """The settings ``data`` holds, or None and what the model finds wrong: (where, message)."""
    try:
        return _SETTINGS.validate_python(data), []
    except ValidationError as exc:
        return None, [objection(error) for error in exc.errors()]


def _get(data: Any, where: tuple) -> Any:
    for key in where:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _line(problem: str) -> tuple[int, int]:
    """File problems first, by line; then the environment's and the options'."""
    found = re.match(r"[^\n]*?:(\d+): ", problem)
    return (0, int(found.group(1))) if found else (1, 0)


def _not_here() -> str:
    names = sorted(name for name in Settings.__pydantic_fields__ if name not in HIDDEN)
    return f"is not a setting here (expected one of: {', '.join(names)})"


def _put(data: dict, where: tuple, value: Any) -> None:
    for key in where[:-1]:
        data[key] = data[key] if isinstance(data.get(key), dict) else {}
        data = data[key]
    data[where[-1]] = value


def _numeric(where: tuple) -> bool:
    _, kind = declared_at(where)
    return kind in (int, float)


def _number(text: str) -> Any:
    """Text from the environment as a number when it is one (the model checks it)."""
    for kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            continue
    return text


def _expand_secrets(data: dict) -> dict[tuple, str]:
    """``${VAR}`` in route URLs and web credentials replaced from the environment, in
    place; the places that name an unset variable, with the problem."""
    failed: dict[tuple, str] = {}
    routes = (data.get("notifications") or {}).get("routes") if isinstance(data.get("notifications"), dict) else None
    for i, route in enumerate(routes if isinstance(routes, list) else []):
        urls = route.get("urls") if isinstance(route, dict) else None
        for j, url in enumerate([urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []):
            if isinstance(url, str):
                expanded, unset = expand_variables(url)
                if unset:
                    names = " and ".join(f"${{{name}}}" for name in unset)
                    where = ("notifications", "routes", i, "urls", j)
                    failed[where] = f"names an environment variable that is not set: {names}"
                elif isinstance(urls, str):
                    route["urls"] = expanded
                else:
                    urls[j] = expanded
    web = data.get("web")
    for key in ("token", "username", "password") if isinstance(web, dict) else ():
        if isinstance(web.get(key), str):
            web[key], unset = expand_variables(web[key])
            if unset:
                failed[("web", key)] = f"names an unset environment variable: {unset[0]}"
                web[key] = None
            web[key] = web[key] or None
    return failed
