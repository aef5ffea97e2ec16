"""Helpers for registry-page text: lines, sections, and CT.gov display words."""

from __future__ import annotations

import re

from monitor.normalize.text import clean, enum_spelling

_FLAGS = re.compile("[\U0001f1e6-\U0001f1ff]+")
_LEAD_MARKERS = re.compile(r"^\s*(?:[-\u2022*]\s+)+")


def page_lines(text: str, strip_markers: bool = False) -> list[str]:
    """Non-blank lines, whitespace trimmed; optionally without leading ``-``/``•``."""
    out = []
    for line in text.replace("\r", "").split("\n"):
        line = _FLAGS.sub("", line).strip()
        if strip_markers:
            line = _LEAD_MARKERS.sub("", line).strip()
        if line:
            out.append(line)
    return out


def has_landmarks(text: str, *landmarks: str) -> bool:
    """Whether every landmark stands on a line of its own (a page heading or label), not
    merely somewhere in the text: a document that only mentions them is not a page."""
    lines = set(page_lines(text, strip_markers=True))
    return all(landmark in lines for landmark in landmarks)


def split_sections(lines: list[str], headings: set[str]) -> dict[str, list[str]]:
    """Lines grouped under the last heading seen; lines before any heading go
    under ``""``.  A heading that repeats keeps its first section."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in lines:
        if line in headings and line not in sections:
            current = line
            sections[current] = []
        elif line in headings:
            current = f"{line} (again)"
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    return sections


def after_label(lines: list[str], label: str) -> str | None:
    """The line following ``label`` in ``lines``."""
    for i, line in enumerate(lines[:-1]):
        if line == label:
            return lines[i + 1]
    return None


def labelled(lines: list[str], prefix: str) -> str | None:
    """The rest of the first line starting with ``prefix``."""
    for line in lines:
        if line.startswith(prefix):
            return line[len(prefix) :].strip() or None
    return None


def place(text: str) -> tuple[str | None, str | None, str | None]:
    """``City, State, Country[, ZIP]`` -> (city, state, country)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > 2 and re.search(r"\d", parts[-1]):
        parts = parts[:-1]  # a postal code
    if not parts:
        return None, None, None
    if len(parts) == 1:
        return None, None, parts[0]
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return parts[0], ", ".join(parts[1:-1]), parts[-1]


# CT.gov website words -> API enum spelling, where the plain rule would differ.
_DISPLAY_ENUMS = {
    "n/a": "NA",
    "single group assignment": "SINGLE_GROUP",
    "parallel assignment": "PARALLEL",
    "crossover assignment": "CROSSOVER",
    "factorial assignment": "FACTORIAL",
    "sequential assignment": "SEQUENTIAL",
    "none (open label)": "NONE",
    "non-randomized": "NON_RANDOMIZED",
    "all": "ALL",
    "adult": "ADULT",
    "older adult": "OLDER_ADULT",
    "child": "CHILD",
}


def display_enum(text: str | None) -> str | None:
    """A website's display word as the API spells it (``Single Group Assignment``
    -> ``SINGLE_GROUP``, ``Double (Participant, Investigator)`` -> ``DOUBLE``)."""
    if not text:
        return None
    key = text.strip().lower()
    if key in _DISPLAY_ENUMS:
        return _DISPLAY_ENUMS[key]
    masking = re.match(r"(single|double|triple|quadruple)\b", key)
    if masking:
        return masking.group(1).upper()
    return enum_spelling(text)


def leading_int(text: str | None) -> int | None:
    """The number a text starts with: ``1,200 participants`` -> 1200."""
    match = re.match(r"\d[\d,]*", (text or "").strip())
    return int(match.group(0).replace(",", "")) if match else None


def yes_no(text: str | None) -> bool | None:
    if not text:
        return None
    return {"yes": True, "no": False}.get(text.strip().lower())


def paragraph(lines: list[str]) -> str | None:
    return clean("\n".join(lines))
