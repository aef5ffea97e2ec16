"""Two records -> field deltas (pure; the only module that imports deepdiff).

Records are first projected into a *comparison form* in which nothing that is
not news can differ:

* text is compared NFKC-normalized with whitespace collapsed and markdown
  escapes undone;
* lists whose order means nothing (sites, conditions, keywords, collaborators,
  ids, references, arms, interventions, outcomes, criteria) become mappings
  keyed by the item's identity, so a reorder is no change and one inserted
  site is one change, not hundreds;
* sites are keyed by facility, city, state and country in a form that survives
  re-encoding and capitalisation; repeated identities ("Research Site") are
  numbered in order;
* bookkeeping (last-update dates, the source) is left out; geoPoints and
  ``derivedSection`` never reach a record at all.

DeepDiff finds the differing paths in that form; each path is then reduced to
its *unit* (a field, or one item of a keyed field) and reported once, with the
display values of both sides.  An item removed and another added in the same
field are paired when similar enough (a reworded criterion, a renamed site),
and reported as one modification.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor import pairing
from monitor.fields import FIELDS
from monitor.fieldtable import TEXT_FORMS, Field, Noise
from monitor.model import ChangeKind, TrialRecord

# Which fields there are, how list items are keyed and paired, and what is
# noise: the field table (monitor.fields).  Fields that are mappings of items
# (a unit is one item):
KEYED = frozenset(name for name, f in FIELDS.items() if f.keyed)


_MISSING = object()


@dataclass(frozen=True)
class Delta:
    """One unit that differs: a field, or one item of a keyed field."""

    field: str
    key: str | None
    change: ChangeKind
    old: Any
    new: Any
    parts: tuple[str, ...] = ()  # sub-fields of a modified item that differ


@functools.cache
def _comparer(noise: Noise) -> Callable[[Any], Any]:
    """The comparison form under a field's noise rules: text in its form for them (``loose``
    by default: case and encoding damage vanish), ``false`` as absent where they say so."""
    text, false_is_absent = TEXT_FORMS[noise.text], noise.false_is_absent

    def cmp(value: Any) -> Any:
        if value is False and false_is_absent:
            return None
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return {k: cmp(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [cmp(v) for v in value]
        return value

    return cmp


_cmp = _comparer(Noise())  # the default noise rules


def _keyed(entries: list[tuple[str, Any, Any]], cmp=_cmp) -> tuple[dict[str, Any], dict[str, Any]]:
    """(comparison, display) mappings of ``(key, compared, shown)`` entries.

    Items that share a key (two "Research Site"s in one city, one drug listed
    under two intervention types) are numbered in the order of their content,
    not of the list, so that a reorder never pairs them differently."""
    groups: dict[str, list[tuple[str, Any, Any]]] = {}
    for base, compared, shown in entries:
        value = cmp(compared)
        groups.setdefault(base or "?", []).append((json.dumps(value, sort_keys=True, ensure_ascii=False), value, shown))
    compare: dict[str, Any] = {}
    show: dict[str, Any] = {}
    for base, items in groups.items():
        if len(items) > 1:
            items.sort(key=lambda item: item[0])
        for n, (_, value, shown) in enumerate(items, 1):
            key = base if n == 1 else f"{base} #{n}"
            compare[key], show[key] = value, shown
    return compare, show


def project(record: TrialRecord, data: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The record in (comparison, display) form, field by field, as the field table says
    (``data``: ``record.to_dict()``, when the caller has it)."""
    data = record.to_dict() if data is None else data
    compare: dict[str, Any] = {}
    show: dict[str, Any] = {}
    for name, f in FIELDS.items():
        compare[name], show[name] = _projected(f, f.value(data))
    return compare, show


def _projected(f: Field, value: Any) -> tuple[Any, Any]:
    cmp = _comparer(f.noise)
    if f.shape == "items":
        assert f.items is not None
        return _keyed(f.items.entries(value), cmp)
    if f.shape == "bag":  # an answer gone from false to absent is no news
        return {k: v for k, v in cmp(value).items() if v is not None}, value
    if f.shape == "set":  # a list whose order means nothing
        value = sorted(value)
    return cmp(value), value


# A trial's first version is stored without its hash (a first load spends a third of its CPU
# projecting otherwise): its readers compute it from the stored record when first needed
# (:func:`hashed`); the hash is the same whenever it is computed.
UNHASHED = ""


def fingerprint(record: TrialRecord) -> str:
    """A hash of the record's comparison form: equal exactly when
    :func:`field_deltas` finds nothing."""
    return hash_projection(project(record))


def hashed(content_hash: str, record: TrialRecord) -> str:
    """``content_hash``, or the record's fingerprint when it was stored :data:`UNHASHED`."""
    return fingerprint(record) if content_hash == UNHASHED else content_hash


def hash_projection(projected: tuple[dict, dict]) -> str:
    """:func:`fingerprint` of a record already projected (:func:`project`)."""
    canonical = json.dumps(projected[0], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# Why not one DeepDiff of the two projections (with ``ignore_string_case`` and
# ``exclude_regex_paths``)?  Measured with bench/deepdiff_bench.py on 1,136 real
# pairs, both paths find the same deltas, but DeepDiff walks every equal site
# and criterion in Python: about 3x the CPU time (typical records 116 against
# 331 pairs/s, 100+ sites 18 against 53, slowest pair 125 against 43 ms).
# Here ``==`` (in C) skips equal fields and items, and DeepDiff only names the
# differing sub-fields of the few items that differ.
def field_deltas(old: TrialRecord, new: TrialRecord, new_projected: tuple[dict, dict] | None = None) -> list[Delta]:
    """Every unit that differs between ``old`` and ``new``.

    When the two records come from different formats (a registry page and the
    API, say), a field that either format leaves empty is not compared: one
    format not showing a field is not a change of the trial.  ``new_projected``:
    ``project(new)`` when the caller has it already (it is not modified).
    """
    old_cmp, old_show = project(old)
    new_cmp, new_show = (dict(part) for part in new_projected) if new_projected else project(new)
    across_formats = old.source != new.source
    deltas: list[Delta] = []
    _follow_renamed_cities(old_show, new_cmp, new_show)
    for name in old_cmp:
        if old_cmp[name] == new_cmp[name]:
            continue
        if across_formats and (_empty(old_cmp[name]) or _empty(new_cmp[name])):
            continue
        if name in KEYED:
            new_cmp[name], new_show[name] = pairing.align(old_cmp[name], new_cmp[name], old_show[name], new_show[name])
            deltas.extend(_keyed_deltas(name, old_cmp[name], new_cmp[name], old_show[name], new_show[name]))
        else:
            deltas.append(
                Delta(
                    name,
                    None,
                    _kind(old_cmp[name], new_cmp[name]),
                    old_show[name],
                    new_show[name],
                    _changed_parts(old_cmp[name], new_cmp[name]),
                )
            )
    # A site added or removed takes its contacts with it: one change, not two.
    moved_sites = {d.key for d in deltas if d.field == "locations" and d.change != ChangeKind.MODIFIED}
    return [
        d
        for d in deltas
        if not (d.field == "site_contacts" and d.change != ChangeKind.MODIFIED and d.key in moved_sites)
    ]


def _follow_renamed_cities(old_show: dict, new_cmp: dict, new_show: dict) -> None:
    """Give a site whose city the registry renamed its old key again (in place)."""
    old_sites, new_sites = old_show["locations"], new_show["locations"]
    removed = [k for k in old_sites if k not in new_sites]
    added = [k for k in new_sites if k not in old_sites]
    renamed = pairing.renamed_cities(removed, added, old_sites, new_sites)
    if renamed:
        for name in ("locations", "site_contacts"):
            new_cmp[name] = {renamed.get(k, k): v for k, v in new_cmp[name].items()}
            new_show[name] = {renamed.get(k, k): v for k, v in new_show[name].items()}


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    return value in (None, "", [], ())


def _kind(old: Any, new: Any) -> ChangeKind:
    if _empty(old):
        return ChangeKind.ADDED
    if _empty(new):
        return ChangeKind.REMOVED
    return ChangeKind.MODIFIED


def _changed_parts(old: Any, new: Any) -> tuple[str, ...]:
    """The sub-fields (first path step) that DeepDiff finds different."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return ()
    from deepdiff import DeepDiff

    report = DeepDiff(old, new, verbose_level=0, view="tree", threshold_to_diff_deeper=0)
    parts: list[str] = []
    for items in report.values():
        for item in items:
            path = item.path(output_format="list")
            if path and str(path[0]) not in parts:
                parts.append(str(path[0]))
    return tuple(sorted(parts))


def _base(key: str) -> str:
    return key.split(" #")[0]


def _keyed_deltas(name: str, old_cmp: dict, new_cmp: dict, old_show: dict, new_show: dict) -> list[Delta]:
    # Items are compared whole (equal values are skipped at C speed); DeepDiff
    # names the differing sub-fields only of the few items that differ.
    units: dict[str, set[str]] = {}
    for key in sorted(old_cmp.keys() | new_cmp.keys()):
        before, after = old_cmp.get(key, _MISSING), new_cmp.get(key, _MISSING)
        if before is _MISSING or after is _MISSING:
            units[key] = set()
        elif before != after:
            units[key] = set(_changed_parts(before, after))
    added = [k for k in units if k not in old_cmp]
    removed = [k for k in units if k not in new_cmp]
    deltas = [
        Delta(name, key, ChangeKind.MODIFIED, old_show[key], new_show[key], tuple(sorted(parts)))
        for key, parts in units.items()
        if key in old_cmp and key in new_cmp
    ]
    items = FIELDS[name].items
    threshold, by_site = (items.pairing, items.by_site) if items is not None else (None, False)
    pairs = pairing.pairs(removed, added, threshold, sites=by_site)
    for old_key, new_key in pairs:
        parts = _changed_parts(old_cmp[old_key], new_cmp[new_key]) if isinstance(old_cmp[old_key], dict) else ()
        deltas.append(Delta(name, new_key, ChangeKind.MODIFIED, old_show[old_key], new_show[new_key], parts))
    paired_old = {o for o, _ in pairs}
    paired_new = {n for _, n in pairs}
    deltas += [Delta(name, k, ChangeKind.REMOVED, old_show[k], None) for k in removed if k not in paired_old]
    deltas += [Delta(name, k, ChangeKind.ADDED, None, new_show[k]) for k in added if k not in paired_new]
    return deltas
