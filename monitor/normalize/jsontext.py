"""Untrusted text -> JSON values we can store, or one clear :class:`ParseError`.

What :func:`json.loads` lets through and we refuse: nesting deeper than the limit (checked
before parsing, so deep input never reaches the parser's recursion), ``NaN`` and ``Infinity``,
numbers of absurd size (a 5,001-digit integer), strings with a NUL (PostgreSQL cannot store
it) or a lone surrogate (not Unicode), and strings longer than the text limit.  Errors name the
JSON path (``studies[3].protocolSection...``) where one is known.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from monitor import limits as _limits
from monitor.errors import ParseError

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class BrokenJSON(ParseError):
    """Text that is not JSON at all (truncated or garbled), as opposed to JSON we refuse."""


def too_deep(text: str, limit: int) -> bool:
    """Whether arrays and objects in JSON ``text`` nest deeper than ``limit`` (strings skipped):
    one pass of running depth over the brackets alone, at C speed and linear in the text, never
    recursion (unbalanced text is left to the parser to name, unless it already nests too deep)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def decode(text: str, limits: _limits.Limits | None = None) -> Any:
    """Parse JSON ``text`` within ``limits`` (default :data:`monitor.limits.DEFAULT_LIMITS`)."""
    limits = limits or _limits.DEFAULT_LIMITS
    if too_deep(text, limits.max_json_depth):
        depth = limits.max_json_depth
        raise ParseError(f"JSON nested more than {depth} levels deep (the limit, limits.max_json_depth)")

    def constant(name: str) -> Any:
        raise ParseError(f"{name} is not a JSON number (only finite numbers are accepted)")

    try:
        value = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise BrokenJSON(f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except ValueError as exc:  # Python's own cap on integer digits (4,300)
        raise ParseError(f"a number of thousands of digits (at most {limits.max_number_digits})") from exc
    except RecursionError as exc:  # the depth check above should make this unreachable
        raise ParseError("JSON nested too deeply") from exc
    check_values(value, limits)
    return value


def check_values(value: Any, limits: _limits.Limits | None = None, at: str = "") -> None:
    """Every string (keys included) valid, storable and within the text limit."""
    limits = limits or _limits.DEFAULT_LIMITS
    if isinstance(value, str):
        problem = text_problem(value, limits)
        if problem:
            raise ParseError(f"{at or 'the payload'}: {problem}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ParseError(f"{at or 'the payload'}: a number out of range (not a finite number)")
    elif isinstance(value, int) and abs(value) >= 10**limits.max_number_digits:
        digits = len(str(abs(value)))
        raise ParseError(f"{at or 'the payload'}: a number of {digits:,} digits (at most {limits.max_number_digits})")
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key, limits)
            if problem:
                raise ParseError(f"{at or 'the payload'}: a key is {problem}")
            check_values(item, limits, f"{at}.{key}" if at else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(item, limits, f"{at}[{index}]")


def text_problem(text: str, limits: _limits.Limits | None = None) -> str | None:
    """Why ``text`` cannot be stored as it is, or None."""
    limits = limits or _limits.DEFAULT_LIMITS
    if len(text) > limits.max_text_chars:
        return f"a text of {len(text):,} characters (at most {limits.max_text_chars:,}: limits.max_text_chars)"
    if "\x00" in text:
        return "a text with a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a text with a lone surrogate ({text[exc.start]!r}), which is not Unicode"
    return None
