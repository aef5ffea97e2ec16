"""The kinds of value a setting holds, each with the words users read when a value is wrong.

A setting is declared once, in :mod:`monitor.settings` (or :mod:`monitor.limits`,
:mod:`monitor.expected`), as ``name: Kind = default``; its kind checks the value wherever it
comes from (the file, the environment, the command line, Python) and never coerces: ``'1e9'``
is text, not a number; ``2.5`` is not a whole number; ``yes`` is not ``true``.  A wrong value
raises :func:`problem`, which :mod:`monitor.yamlconfig` turns into ``file:line: path: message``.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainValidator, WrapValidator
from pydantic_core import PydanticCustomError

from monitor.schedules import Schedule, check_schedule

KIND = "setting"  # the pydantic error type of our own problems


def problem(message: str, *at: str | int) -> PydanticCustomError:
    """A wrong value, in users' words; ``at`` names the place below the value checked
    (``problem("'x' is used twice", 1, "name")``)."""
    return PydanticCustomError(KIND, "{message}", {"message": message, "at": at})


def shown(value: Any) -> str:
    """A value as a message quotes it: its repr, cut at 40 characters."""
    try:
        text = repr(value)
    except ValueError:  # an integer of thousands of digits
        return "a number of thousands of digits"
    return text if len(text) <= 40 else text[:37] + "..."


def _single(value: Any) -> None:
    if isinstance(value, dict | list | tuple):
        raise problem("should be a single value")


def _bound(number: float) -> str:
    """A range's bound as written in a message: exact (4294967296, never 4.29497e+09)."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def range_problem(value: Any, least: float, most: float, whole: bool) -> str | None:
    """What is wrong with ``value`` for a number from ``least`` to ``most`` (None when it is right)."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
        return f"{shown(value)} should be {kind} of at least {_bound(least)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{shown(value)} should be a finite number of at least {_bound(least)}"
    if value < least:
        return f"{shown(value)} should be {kind} of at least {_bound(least)}"
    if value > most:
        return f"{shown(value)} is more than {_bound(most)}, the most allowed"
    return None


def _ranged(least: float, most: float, whole: bool):
    def check(value: Any, handler):
        _single(value)
        found = range_problem(value, least, most, whole)
        if found:
            raise problem(found)
        return handler(value)

    return check


def Whole(least: int, most: int) -> Any:  # a type, written where a type goes
    """A whole number from ``least`` to ``most``."""
    return Annotated[int, Field(ge=least, le=most), WrapValidator(_ranged(least, most, True))]


def Number(least: float, most: float) -> Any:
    """A finite number from ``least`` to ``most`` (a whole one is read as a number)."""
    return Annotated[float, Field(ge=least, le=most), WrapValidator(_ranged(least, most, False))]


def as_text(value: Any) -> str:
    """``value`` as text (a number counts as its text), or the problem."""
    _single(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise problem(f"{shown(value)} should be text")
    return str(value)


def _flag(value: Any) -> bool:
    _single(value)
    if not isinstance(value, bool):
        raise problem(f"{shown(value)} should be true or false")
    return value


def _texts(value: Any) -> Any:
    """A single value counts as a list of one; empty items are left out."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, list | tuple):
        raise problem("should be a list")
    return tuple(item for item in value if item not in (None, ""))


def _schedule(value: Any) -> Schedule:
    if isinstance(value, Schedule):
        return value
    parsed, found = check_schedule(as_text(value))
    if found:
        raise problem(found)
    return parsed


Text = Annotated[str, PlainValidator(as_text)]
Flag = Annotated[bool, PlainValidator(_flag)]
When = Annotated[Schedule, PlainValidator(_schedule)]  # an interval or a cron expression (monitor.schedules)


def Texts(item: Any = Text) -> Any:
    """A list of ``item`` (text by default); one value alone counts as a list of one."""
    return Annotated[tuple[item, ...], BeforeValidator(_texts)]


def Checked(check, says: str) -> Any:
    """Text for which ``check(text)`` is true; otherwise ``says`` (``{value!r} ...``) is the problem."""

    def validate(value: Any) -> str:
        text = as_text(value)
        if not check(text):
            raise problem(says.format(value=text))
        return text

    return Annotated[str, PlainValidator(validate)]


def Choice(values, says: str) -> Any:
    """One of ``values``; otherwise ``says`` (``{value!r} should be ...``) is the problem."""
    return Checked(lambda text: text in tuple(values), says)


def Pattern(pattern: str, says: str) -> Any:
    return Checked(re.compile(pattern).fullmatch, says)


class Shown:
    """How ``monitor config check`` shows a setting: ``hidden``, ``secret`` (``***``),
    ``url`` (secrets in it masked) or ``apprise`` (Apprise's private form)."""

    def __init__(self, how: str) -> None:
        self.how = how
