"""Change lists -> notification messages in plain text, Markdown or HTML (pure).

Every message is made from the same context: the trial's id and title, a
one-line headline ("NCT05935098 terminated; enrollment 263 ESTIMATED -> 99
ACTUAL"), then each change's summary, grouped by category, most severe first;
criteria changes as added and removed lines; links to the registry record and
its history.  A long run of site changes is summed up, then listed in part.

The templates are Jinja2 files in ``monitor/templates``; a folder named by
``notifications.templates`` overrides any of them by name.

Registry text is escaped for its channel by the template engine itself, so a
user template that forgets to escape is still safe: HTML templates render with
autoescape on; every value a Markdown template prints goes through
:func:`markdown_text` (``<``, ``>``, ``[``, ``]``, ``*``, a backtick, ``~``, ``\\``, an ``_`` that
is not inside a word and a ``#`` starting a line backslash-escaped, so no ``*bold*`` or ``_x_`` is markup,
no ``<!here>``, ``<@user>``, ``<url|label>`` or ``[label](url)`` in a title
becomes a mention or a disguised link, and ``@channel``, ``@here``,
``@everyone`` neutralised).  ``&`` is left to Apprise, which sends it to Slack
as ``&amp;``.  Slack has no escapes: for it, :func:`slack_text` turns the escaped
``*``, ``_``, ``~`` and backtick into look-alikes that never format nor open code.
The only links in a message are those the templates build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from monitor.aggregate import View, select
from monitor.model import Category, Change, ChangeKind, Severity

FORMATS = ("text", "markdown", "html")
SUFFIX = {"text": "txt", "markdown": "md", "html": "html"}
MAX_ITEMS = 12  # changes of one category listed in full; more are summed up
REGISTRY = "https://clinicaltrials.gov/study/"


_MENTION = re.compile(r"@(?=(?:channel|here|everyone|group)\b)", re.IGNORECASE)
# backslash, tags and links, emphasis, code and strike-through anywhere; an underscore only where it can be
# emphasis (not inside a word: NOT_YET_RECRUITING stays as it is); a heading's # at the start of a line
_MARKDOWN_SPECIAL = re.compile(r"([\\<>\[\]*`~])|(?<![^\W_])_|_(?![^\W_])|^([ \t]*)#", re.MULTILINE)
_ZERO_WIDTH = "\u200b"


class Verbatim(str):
    """Text a Markdown template prints as it is (already made safe)."""


def no_mentions(text: str) -> str:
    """``@channel``, ``@here``, ``@everyone`` that notify no one."""
    return _MENTION.sub("@" + _ZERO_WIDTH, text)


def markdown_text(value: Any) -> Any:
    """A value as a Markdown template prints it: registry text escaped (see the module's docstring)."""
    if value is None or isinstance(value, (Verbatim, bool, int, float)):
        return value
    return no_mentions(_MARKDOWN_SPECIAL.sub(_escaped, str(value)))


def _escaped(match: re.Match) -> str:
    if match.group(2) is not None:  # a heading's #, after its indent
        return match.group(2) + "\\#"
    return "\\" + match.group(0)


# Slack's mrkdwn has no escapes: CommonMark's \* \_ \~ \` (which Apprise passes on) would show their backslash
# and could still format, or open code; in a message for Slack they become look-alikes that never format
_SLACK_LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_ESCAPE_PAIR = re.compile(r"\\(.)", re.DOTALL)


def slack_text(markdown: str) -> str:
    """A Markdown message as it goes to Slack: registry text's escaped ``*``, ``_``, ``~`` and backtick
    (:func:`markdown_text`) as look-alikes (``∗ ˍ ∼ ˋ``); the templates' own markup is left as it is."""
    return _ESCAPE_PAIR.sub(lambda m: _SLACK_LOOKALIKES.get(m.group(1), m.group(0)), markdown)


def markdown_code(value: Any) -> Verbatim:
    """Text for a fenced code block, where backslash escapes do not apply (Apprise
    escapes ``<``, ``>``, ``&`` inside code for Slack): no fence can be closed from within."""
    return Verbatim(no_mentions(str(value).replace("```", "`" + _ZERO_WIDTH + "``")))


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    format: str


# --- the headline ------------------------------------------------------------------------


def headline(changes: list[Change]) -> str:
    """A few words for the most important changes: ``terminated; enrollment 263 ESTIMATED -> 99 ACTUAL``."""
    phrases: list[str] = []
    by_category: dict[Category, list[Change]] = {}
    for change in sorted(changes, key=lambda c: (c.severity != Severity.MAJOR, list(Category).index(c.category))):
        by_category.setdefault(change.category, []).append(change)
    for category, group in by_category.items():
        phrases.extend(_phrases(category, group))
    shown = phrases[:3]
    more = len(phrases) - len(shown)
    return "; ".join(shown) + (f"; +{more} more" if more > 0 else "") if shown else "no changes"


def _phrases(category: Category, group: list[Change]) -> list[str]:
    if category == Category.STATUS:
        status = next((c for c in group if c.field == "overall_status" and c.new), None)
        known = next((c for c in group if c.field == "last_known_status" and c.new), None)
        phrases = []
        if status:
            phrases.append(
                _status_phrase(str(status.new))
                + (f" (last known: {str(known.new).lower().replace('_', ' ')})" if known else "")
            )
        rest = len(group) - bool(status) - bool(known and status)
        return phrases + ([f"{rest} status change{'s' if rest != 1 else ''}"] if rest > 0 else [])
    if category == Category.ENROLLMENT:
        c = group[0]
        old, new = c.old or {}, c.new or {}
        old_side = f"{old.get('count')} {(old.get('type') or '').lower()}".strip()
        new_side = f"{new.get('count')} {(new.get('type') or '').lower()}".strip()
        return [f"enrollment {old_side} -> {new_side}"]
    if category == Category.DATES:
        return [c.summary.split(":")[0][:1].lower() + c.summary.split(":")[0][1:] for c in group]
    if category == Category.MEMBERSHIP:
        return [c.summary.split(":")[0][:1].lower() + c.summary.split(":")[0][1:] for c in group]
    if category == Category.EXPECTED:
        return [
            _EXPECTED_WORDS.get(c.field, c.field) + (" resolved" if c.change == ChangeKind.REMOVED else "")
            for c in group
        ]
    noun = {
        Category.LOCATIONS: "site",
        Category.ELIGIBILITY: "eligibility",
        Category.OUTCOMES: "outcome",
    }.get(category, category.label)
    count = sum(len(c.items) or 1 for c in group)
    return [f"{count} {noun} change{'s' if count != 1 else ''}"]


_EXPECTED_WORDS = {  # the expected-event rules (monitor.expected) as a headline says them
    "completion-passed": "primary completion passed",
    "results-overdue": "results overdue",
    "verification-stale": "status verification stale",
    "inconsistent": "record inconsistent",
}


# --- the context -------------------------------------------------------------------------


_BARE_STATUSES = {"TERMINATED", "COMPLETED", "WITHDRAWN", "SUSPENDED", "UNKNOWN", "WITHHELD"}


def _status_phrase(status: str) -> str:
    """``terminated``, ``now recruiting``."""
    words = status.lower().replace("_", " ").replace("active not", "active, not")
    return words if status in _BARE_STATUSES else f"now {words}"


def _criterion_lines(change: Change) -> list[tuple[str, str]]:
    if change.change == ChangeKind.ADDED:
        return [("+", str(change.new))]
    if change.change == ChangeKind.REMOVED:
        return [("-", str(change.old))]
    return [("-", str(change.old)), ("+", str(change.new))]


def sections(changes: list[Change]) -> list[dict[str, Any]]:
    """Changes grouped by category, most severe first, in their aggregated form
    (:mod:`monitor.aggregate`): a summed-up change lists its first members."""
    grouped: dict[Category, list[Change]] = {}
    for change in select(changes, None):
        grouped.setdefault(change.category, []).append(change)
    out = []
    for category, group in grouped.items():
        section: dict[str, Any] = {
            "category": category.value,
            "label": category.label,
            "major": any(c.severity == Severity.MAJOR for c in group),
            "items": [],
            "summary": None,
            "more": 0,
        }
        shown = group
        if len(group) > MAX_ITEMS:
            section["summary"] = f"{len(group)} {category.value.replace('_', ' ')} changes"
            shown, section["more"] = group[: MAX_ITEMS - 2], len(group) - (MAX_ITEMS - 2)
        for change in shown:
            criterion = change.field in ("eligibility.inclusion", "eligibility.exclusion") and not change.items
            listed = View().listed(change)
            section["items"].append(
                {
                    "summary": change.summary,
                    "severity": change.severity.value,
                    "lines": _criterion_lines(change) if criterion else [],
                    "members": [m.summary for m in listed],
                    "more": len(change.items) - len(listed) if change.field != "contacts" else 0,
                    "label": ("Inclusion" if change.field.endswith("inclusion") else "Exclusion")
                    + " criterion "
                    + {"added": "added", "removed": "removed", "modified": "reworded"}[change.change.value]
                    if criterion
                    else None,
                }
            )
        out.append(section)
    return out


def trial_context(
    key: str,
    title: str,
    changes: list[Change],
    version: int | None = None,
    previous: int | None = None,
    material: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """``material``: ``(level, rule)`` of the most material change
    (:meth:`monitor.materiality.Materiality.top`), shown when given."""
    nct = key if key.startswith("NCT") else None
    return {
        "material": {"level": material[0], "rule": material[1]} if material else None,
        "key": key,
        "title": title,
        "headline": f"{key} {headline(changes)}",
        "version": version,
        "previous": previous,
        "count": len(changes),
        "major": sum(1 for c in changes if c.severity == Severity.MAJOR),
        "sections": sections(changes),
        "record_url": f"{REGISTRY}{nct}" if nct else None,
        "history_url": f"{REGISTRY}{nct}?tab=history" if nct else None,
    }


# --- rendering ---------------------------------------------------------------------------


@cache
def _environment(templates: str | None, fmt: str):
    """The template environment of one format: HTML autoescaped, Markdown through :func:`markdown_text`."""
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

    loaders = [FileSystemLoader(templates)] if templates else []
    loaders.append(PackageLoader("monitor", "templates"))
    env = Environment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=fmt == "html",
        finalize=markdown_text if fmt == "markdown" else None,
    )
    env.filters["code"] = markdown_code if fmt == "markdown" else (lambda value: value)
    return env


def _render(name: str, fmt: str, context: dict[str, Any], templates: str | None) -> str:
    from markupsafe import escape

    template = _environment(templates, fmt).get_template(f"{name}.{SUFFIX[fmt]}.j2")
    # `e` stays for templates written when escaping was by hand; autoescape never escapes twice.
    return template.render(**context, e=escape).strip() + "\n"


def event_message(
    key: str,
    title: str,
    changes: list[Change],
    fmt: str,
    version: int | None = None,
    previous: int | None = None,
    templates: str | None = None,
    material: tuple[str, str] | None = None,
) -> Message:
    context = trial_context(key, title, changes, version, previous, material)
    subject = no_mentions(context["headline"]) if fmt == "markdown" else context["headline"]
    return Message(subject, _render("event", fmt, context, templates), fmt)


def digest_message(
    route: str, period: str, trials: list[dict[str, Any]], fmt: str, templates: str | None = None
) -> Message:
    """``trials``: :func:`trial_context` values, one per trial, most material first (their
    ``materiality`` rank, when given), then most severe."""
    ordered = sorted(trials, key=lambda t: (-t.get("materiality", 0), -t["major"], -t["count"], t["key"]))
    total = sum(t["count"] for t in ordered)
    title = (
        f"registry-monitor {period} digest: {total} change{'s' if total != 1 else ''} in "
        f"{len(ordered)} trial{'s' if len(ordered) != 1 else ''}"
    )
    context = {"route": route, "period": period, "title": title, "trials": ordered, "total": total}
    return Message(title, _render("digest", fmt, context, templates), fmt)
