"""The YAML configuration file: read into plain data with each value's line, and the
settings model's objections put back on those lines (``file:line: path: message``).

What the file means is :mod:`monitor.settings`; this module only knows where things are.
All mistakes are collected (``monitor config check`` lists them all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError
from monitor.settingsview import declared_at
from monitor.settingtypes import KIND
from monitor.yamlnodes import MAX_CHARACTERS, Reader, Refused, compose, line


def read_file(path: Path) -> tuple[dict, Reader]:
    """The file as plain data, and the reader that knows each value's node and the
    problems of form (duplicate keys, tags...); a ConfigError when it cannot be read at all."""
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
    reader = Reader()
    if node is None:
        return {}, reader
    data = reader.read(node)
    if not isinstance(data, dict):
        reader.problems.append((node, (), "should be a mapping of settings"))
        return {}, reader
    return data, reader


def dotted(where: tuple) -> str:
    """``("watches", 2, "schedule")`` as ``watches[2].schedule``."""
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def objection(error: dict[str, Any]) -> tuple[tuple, str]:
    """(where, message) of one pydantic error, in the words users read."""
    where, kind, ctx = tuple(error["loc"]), error["type"], error.get("ctx") or {}
    if kind == KIND:
        return (*where, *ctx.get("at", ())), ctx["message"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        _, section = declared_at(where[:-1])
        names = [name for name, info in section.__pydantic_fields__.items() if name not in HIDDEN]
        return where, f"is not a setting here (expected one of: {', '.join(sorted(names))})"
    if kind == "missing":
        return where[:-1], f"needs a {where[-1]}"
    if kind in ("dataclass_type", "dataclass_exact_type", "dict_type", "model_type"):
        return where, "should be a mapping of settings"
    if kind in ("tuple_type", "list_type"):
        info, _ = declared_at(where)
        return where, "should be a list" + (f" of {info.title}" if info is not None and info.title else "")
    return where, error["msg"]


HIDDEN = ("path", "missing")  # fields of Settings that are not for the file


def placed(path: Path | None, reader: Reader | None, where: tuple, message: str, origins: dict, node=None) -> str:
    """``message`` about ``where`` prefixed with where the value came from: an environment
    variable or an option (``MONITOR_DB: ...``), or the file's line and the YAML path."""
    for n in range(len(where), -1, -1):
        if where[:n] in origins:
            return f"{origins[where[:n]]}: {message}"
    nodes = {} if reader is None else reader.nodes
    if message.startswith("is not a setting here") and reader is not None:
        node = reader.keys.get(where)
    for n in range(len(where), -1, -1):
        if node is None and where[:n] in nodes:
            node = nodes[where[:n]]
    at = f"{path}:{line(node)}" if path is not None else "the settings"
    return f"{at}: {dotted(where)}: {message}" if where else f"{at}: {message}"
