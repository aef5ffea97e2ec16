"""Pure text helpers shared by every normalizer: clean text, enum spelling,
dates, and eligibility criteria split into single criteria."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import lru_cache

from monitor.errors import ParseError

_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>^~|=])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean(text: str | None) -> str | None:
    """Display text: markdown escapes undone, runs of spaces collapsed per line,
    blank lines dropped at the ends. ``None`` for empty text."""
    if text is None:
        return None
    text = str(text)
    if "\\" in text:
        text = _MD_ESCAPE.sub(r"\1", text)
    if "\r" in text:
        text = text.replace("\r", "")
    if "\n" not in text:
        return _spaced(text).strip() or None
    out = "\n".join([_spaced(line).strip() for line in text.split("\n")]).strip()
    if "\n\n\n" in out:
        out = _BLANK_LINES.sub("\n\n", out)
    return out or None


def _spaced(line: str) -> str:
    """``line`` with its runs of spaces (of every kind :data:`_SPACES` names) as one space."""
    if line.isascii() and "  " not in line and "\t" not in line:  # nothing to collapse: no regex
        return line
    return _SPACES.sub(" ", line)


def comparable(text: str | None) -> str:
    """The form two texts are compared in: NFKC, markdown escapes undone,
    all whitespace collapsed to single spaces."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", _MD_ESCAPE.sub(r"\1", str(text)))
    return " ".join(text.split())


_QUOTES = re.compile("[\"'`\u2018\u2019\u201c\u201d\u00ab\u00bb]")
_DAMAGED = "\u2022"  # stands for a letter that encoding damage may have replaced
_CONTINUATION = "[\u0080-\u00bf\u0152-\u0192\u02c6\u02dc\u2013-\u2122]"  # bytes 80-BF read as cp1252
_MOJIBAKE = re.compile(f"[\u00c2-\u00df]{_CONTINUATION}|[\u00e0-\u00ef]{_CONTINUATION}{{2}}")


def _repaired(text: str) -> str:
    """UTF-8 read as Windows-1252 (``HÃ´pital``) put back, character by character."""

    def fix(match: re.Match) -> str:
        try:
            return match.group(0).encode("cp1252").decode("utf-8")
        except UnicodeError:
            return match.group(0)

    return _MOJIBAKE.sub(fix, text)


@lru_cache(maxsize=65_536)
def _loose(text: str) -> str:
    return _loose_form(text)


def loose(text: str | None) -> str:
    """The form in which case-only and encoding-only differences vanish.

    Casefolded; mojibake repaired; every non-ASCII letter, replacement
    character or ``?`` inside a word stands for "some letter", and stray
    punctuation glued to it (``Hă"Pital``, ``Laă<Nnec``) goes with it.  So
    ``Hôpital``, ``Hăpital``, ``Hă"Pital`` and ``H?pital`` compare equal, while
    symbols that carry meaning (``≥``, ``<``, digits) still count.  Text mostly
    in another script is only casefolded."""
    if not text:
        return ""
    return _loose(str(text))


def _loose_form(text: str) -> str:
    if text.isascii() and "?" not in text:  # nothing to repair: case, quotes and spaces only
        return " ".join(_QUOTES.sub("", _MD_ESCAPE.sub(r"\1", text)).casefold().split())
    text = unicodedata.normalize("NFKC", _repaired(_MD_ESCAPE.sub(r"\1", str(text))))
    letters = [c for c in text if c.isalpha()]
    if letters and sum(not c.isascii() for c in letters) * 10 > 3 * len(letters):
        return " ".join(text.casefold().split())
    out = "".join(_DAMAGED if (c.isalpha() and not c.isascii()) or c == "\ufffd" else c for c in text).casefold()
    out = re.sub(r"(?<=[a-z0-9])\?(?=[a-z0-9])", _DAMAGED, out)
    out = re.sub(rf"{_DAMAGED}[^\w\s{_DAMAGED}]{{1,2}}(?=\w)", _DAMAGED, out)
    out = _QUOTES.sub("", out)  # quotes are what damage hits most
    out = re.sub(rf"{_DAMAGED}+", _DAMAGED, out)
    out = re.sub(rf"(?<!\w){_DAMAGED}|{_DAMAGED}(?!\w)", "", out)  # a damaged quote or a word's last letter
    return " ".join(out.split())


def name_form(text: str | None) -> str:
    """A name in :func:`loose` form with spaces and punctuation gone: what two
    spellings of one facility, arm or city share (``Cră Teil`` = ``Créteil``)."""
    return "".join(c for c in loose(text) if c.isalnum())


def identity(text: str | None) -> str:
    """A matching key that survives re-encoding, capitalisation and punctuation:
    accents stripped, casefolded, only letters and digits kept."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", " ", bare.casefold()).strip()


# --- enum spelling -------------------------------------------------------------

_PHASE_WORDS = {
    "early phase 1": "EARLY_PHASE1",
    "early phase i": "EARLY_PHASE1",
    "phase 0": "EARLY_PHASE1",
    "phase 1": "PHASE1",
    "phase i": "PHASE1",
    "phase 2": "PHASE2",
    "phase ii": "PHASE2",
    "phase 3": "PHASE3",
    "phase iii": "PHASE3",
    "phase 4": "PHASE4",
    "phase iv": "PHASE4",
    "not applicable": "NA",
    "n/a": "NA",
    "na": "NA",
}


def enum_spelling(value: str | None) -> str | None:
    """``Not yet recruiting`` -> ``NOT_YET_RECRUITING``; enum spellings pass."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[A-Z0-9_]+", value):
        return value
    return re.sub(r"[^A-Za-z0-9]+", "_", value).strip("_").upper() or None


def phases(value: str | None) -> list[str]:
    """Every phase named in ``value``: ``Phase 1/Phase 2`` -> [PHASE1, PHASE2]."""
    if not value:
        return []
    found: list[str] = []
    for part in re.split(r"\s*(?:/|,|\band\b|\|)\s*", value.strip()):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(r"(EARLY_)?PHASE\d|NA", part):
            code = part
        else:
            code = _PHASE_WORDS.get(re.sub(r"\s+", " ", part.lower()))
            if code is None and re.fullmatch(r"\d", part) and found:
                code = f"PHASE{part}"  # "Phase 1/2"
        if code and code not in found:
            found.append(code)
    return found


# --- dates -----------------------------------------------------------------------

_DATE_FORMATS = (
    ("%Y-%m-%d", "%Y-%m-%d"),
    ("%Y-%m", "%Y-%m"),
    ("%B %d, %Y", "%Y-%m-%d"),
    ("%b %d, %Y", "%Y-%m-%d"),
    ("%d %B %Y", "%Y-%m-%d"),
    ("%B %Y", "%Y-%m"),
    ("%b %Y", "%Y-%m"),
)


def parse_date(value: str | None) -> str | None:
    """A registry date as ``YYYY-MM-DD`` or ``YYYY-MM``; None when unreadable."""
    if not value:
        return None
    value = value.strip().rstrip(".")
    for pattern, out in _DATE_FORMATS:
        try:
            return datetime.strptime(value, pattern).strftime(out)
        except ValueError:
            continue
    return None


_DATE_LIKE = re.compile(r"\d{4}-\d{1,2}(?:-\d{1,2})?|[A-Za-z]+ \d{1,2}, \d{4}|\d{1,2} [A-Za-z]+ \d{4}|[A-Za-z]+ \d{4}")


def written_as_date(value: str | None) -> bool:
    """Whether ``value`` is written like a date, real or not."""
    return bool(value and _DATE_LIKE.fullmatch(value.strip().rstrip(".")))


def page_date(value: str | None) -> str | None:
    """A date shown on a registry page, as :func:`parse_date`; a value written like a
    date that is not a real one (``2025-13-45``, ``February 30, 2025``) is refused."""
    found = parse_date(value)
    if found is None and written_as_date(value):
        raise ParseError(f"{value.strip()!r} is not a real calendar date")
    return found


# --- eligibility criteria ----------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[*\-+\u2022\u25aa\u25cf\u2023\u2043\u00b7o]|\d{1,3}[.)]|[a-zA-Z][.)]|\(\w{1,4}\))\s+")
_HEADING = re.compile(
    r"^\s*(?:key\s+|main\s+|general\s+|major\s+)?(inclusion|exclusion)\s+criteria\b[^:]{0,60}:?\s*$",
    re.IGNORECASE,
)


def criterion_text(line: str) -> str:
    """One criterion without its bullet marker or number."""
    while bullet := _BULLET.match(line):  # "1. - a)": every marker in front
        line = line[bullet.end() :]
    return clean(line) or ""


def split_criteria(text: str | None) -> tuple[list[str], list[str]]:
    """Eligibility criteria text -> (inclusion, exclusion), one criterion each.

    Every non-blank line is one criterion with its bullet or number removed.
    Lines before any heading count as inclusion criteria.
    """
    inclusion: list[str] = []
    exclusion: list[str] = []
    current = inclusion
    for raw in (clean(text) or "").split("\n"):  # blank text: no criteria
        if not raw.strip():
            continue
        item = criterion_text(raw)
        heading = _HEADING.match(item)
        if heading:
            current = inclusion if heading.group(1).lower() == "inclusion" else exclusion
            continue
        if item:
            current.append(item)
    return inclusion, exclusion
