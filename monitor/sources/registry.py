"""The registered sources, keyed by the word users write (``source: ctgov``), and
the one place that says which registry a trial key belongs to.

Adding a registry is one line here (or, from a plugin or a test,
``SOURCES["isrctn"] = IsrctnSource``); see the README's "Adding a registry".

Trial keys carry their registry.  The rule, for every registry:

* A registry whose own ids already begin with its name keeps them as they are,
  upper-cased: ``NCT06518668`` (ClinicalTrials.gov), ``ISRCTN12345678`` (ISRCTN).
* Any other registry's id is written ``PREFIX-`` + the id, upper-cased, each run
  of spaces or other separators made one ``-``, where ``PREFIX`` is a short
  upper-case name the source claims: the EU's CTIS number ``2023-123456-12-00``
  is ``EUCT-2023-123456-12-00`` (typed ``EUCT 2023-123456-12-00`` it reads the same).
* Records without a registry id, from snapshot files, are the ``files`` source's:
  ``ORG-...`` (the organization's study id) and ``TITLE-...`` (a hash of the title).

A source's :meth:`~monitor.sources.base.Source.parse_key` applies its rule: it
returns the canonical key, ``None`` for another registry's key, or raises a
:class:`~monitor.errors.UsageError` for its own prefix in the wrong form.
No two sources may claim one prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.errors import UsageError
from monitor.sources.base import Source, shown_key
from monitor.sources.ctgov_source import CtgovSource
from monitor.sources.files_source import FilesSource

SOURCES: dict[str, type[Source]] = {
    "ctgov": CtgovSource,
    "files": FilesSource,
}


def source_named(name: str) -> type[Source]:
    """The source users call ``name``; an unknown name is an error listing the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise UsageError(f"{name!r} is not a source (one of: {known_sources()})") from None


def known_sources() -> str:
    return ", ".join(SOURCES)


def check_key(text: str) -> str:
    """A trial key typed by a user, in its canonical form, checked by the source it
    belongs to (NCT ids are case-insensitive)."""
    for source in SOURCES.values():
        key = source.parse_key(text)
        if key is not None:
            return key
    hints = [source.key_hint for source in SOURCES.values()]
    listed = hints[0] if len(hints) == 1 else f"{', '.join(hints[:-1])} or {hints[-1]}"
    raise UsageError(f"{shown_key(text)} is not a trial key: use {listed}")


def source_of(key: str) -> type[Source]:
    """The source a (checked) trial key belongs to."""
    for source in SOURCES.values():
        try:
            if source.parse_key(key) == key:
                return source
        except UsageError:
            continue
    raise UsageError(f"{key} is not a key of any registered source ({known_sources()})")


def by_source(keys: Iterable[str]) -> dict[str, list[str]]:
    """``keys`` grouped by the name of the source each belongs to, in order."""
    grouped: dict[str, list[str]] = {}
    for key in keys:
        grouped.setdefault(source_of(key).name, []).append(key)
    return grouped
