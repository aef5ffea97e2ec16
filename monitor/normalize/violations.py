"""A pydantic :class:`ValidationError` -> one line: the JSON path, what was expected, what came.

Shared by every declared registry shape (:mod:`monitor.normalize.schema` for ClinicalTrials.gov):
``protocolSection.designModule.phases: expected a list of phase names, got the string "PHASE2"``.
A field's ``description`` (``Field(description=...)``) says what a list or number of it should be.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError


def violation(exc: ValidationError, model: type[BaseModel], at: str = "") -> str:
    """The first error of ``exc`` (raised validating ``model``), as one line."""
    error = exc.errors(include_url=False)[0]
    return f"{json_path(error['loc'], at)}: expected {_expected(error, model)}, got {describe(error.get('input'))}"


def json_path(loc: tuple, at: str = "") -> str:
    path = at.rstrip(".")
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "int", "bool", "list", "dict") or "[" in str(part):
            continue  # pydantic's name of a union member, not a JSON key
        else:
            path += f".{part}" if path else str(part)
    return path or "the payload"


_EXPECTED_BY_TYPE = {
    "string_type": "a string",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "missing": "this field (it is required)",
    "greater_than_equal": "a number of 0 or more",
    "less_than_equal": "a number of at most 1,000,000,000",
}


def _expected(error: dict, model: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "literal_error":
        return f"one of {error['ctx']['expected']}"
    described = _description(error["loc"], model)
    if described and kind in ("list_type", "int_type"):
        return described
    return _EXPECTED_BY_TYPE.get(kind, error["msg"].lower())


def _description(loc: tuple, model: Any) -> str | None:
    """The ``description`` declared on the field that ``loc`` ends in, if any."""
    info = None
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        info = fields[part]
        model = model_in(info.annotation)
    return info.description if info else None


def model_in(annotation: Any) -> Any:
    """The pydantic model an annotation holds (``list[Site] | None`` -> ``Site``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def describe(value: Any) -> str:
    """A short description of a JSON value for an error line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return 'the string "' + shown.replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
