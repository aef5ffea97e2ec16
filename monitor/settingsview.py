"""The settings model read back: what is declared at a place, and the display
(``monitor config check``), both generated from the declarations in :mod:`monitor.settings`."""

from __future__ import annotations

from dataclasses import is_dataclass
from typing import Any, get_args, get_origin

from monitor.apprise_urls import private_url
from monitor.masking import mask_secrets
from monitor.schedules import Schedule
from monitor.settings import Settings
from monitor.settingtypes import Shown


def declared_at(where: tuple) -> tuple[Any, Any]:
    """(the field's declaration, its kind: a section class, a tuple type...) at ``where``
    (``("ctgov", "rate")``, ``("watches", 0)``); (None, None) where nothing is declared."""
    info, kind = None, Settings
    for part in where:
        if isinstance(part, int):
            args = [a for a in get_args(kind) if a is not Ellipsis]
            if get_origin(kind) is not tuple or not args:
                return None, None
            kind = args[0]
            continue
        declared = getattr(kind, "__pydantic_fields__", {})
        if part not in declared:
            return None, None
        info = declared[part]
        kind = info.annotation
        if type(None) in get_args(kind):  # X | None
            kind = next(a for a in get_args(kind) if a is not type(None))
    return info, kind


def _how(info) -> str | None:
    return next((m.how for m in info.metadata if isinstance(m, Shown)), None)


def shown(value: Any) -> Any:
    """A section as plain data for ``config check``: in declaration order, secrets masked,
    unset values (None, and empty lists inside a list's items) left out."""
    if isinstance(value, Schedule):
        return value.text
    if isinstance(value, tuple) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return dict(value)  # (name, level) pairs
    if isinstance(value, tuple):
        return [shown(v) for v in value]
    if not is_dataclass(value):
        return value
    out: dict[str, Any] = {}
    for name, info in type(value).__pydantic_fields__.items():
        item, how = getattr(value, name), _how(info)
        if how == "hidden" or item is None or (item == () and not info.title):  # titled: a list of sections
            continue
        if how == "secret":
            item = "***"
        elif how == "url":
            item = mask_secrets(item)
        elif how == "apprise":
            item = tuple(private_url(url) for url in item)
        out[name] = shown(item)
    return out


def effective(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, secrets masked (``monitor config check``)."""
    return {"config": settings.path or "(built-in defaults)", **shown(settings)}
