"""Which removed item and which added item are one item changed (pure).

An item's key is its own name (a criterion's text, an outcome's measure, a
site's ``facility | city | state | country``).  A removed and an added key are
paired when their names are alike enough: for sites, the facility names alone,
and only within the same city, state and country, so two hospitals in one city
never pass for one renamed hospital.

Similarity is rapidfuzz's normalized Indel ratio (the measure ``difflib`` uses,
in C++).  Up to :data:`FULL_COMPARISON` candidate pairs are all scored; past
that each removed key is scored against the :data:`WINDOW` added keys nearest
to it in sorted order, so a wholesale rewrite costs linear time and still pairs
the items that kept their opening words.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any

FULL_COMPARISON = 250_000  # candidate pairs scored in full (500 x 500)
WINDOW = 40  # neighbours in sorted order scored per removed key past that
NEARBY_KM = 50  # a site whose city was renamed by the registry stays within this


def base(key: str) -> str:
    """The key without its ``#2`` number among items sharing an identity."""
    return key.split(" #")[0]


def site_parts(key: str) -> tuple[str, str]:
    """``(facility, place)`` of a site key."""
    facility, _, place = base(key).partition(" | ")
    return facility, place


def pairs(removed: list[str], added: list[str], threshold: float | None, sites: bool = False) -> list[tuple[str, str]]:
    """Removed and added keys alike enough to be one item changed, best first."""
    if threshold is None or not removed or not added:
        return []
    if sites:
        scored = []
        by_place: dict[str, list[str]] = {}
        for key in added:
            by_place.setdefault(site_parts(key)[1], []).append(key)
        for place, old_keys in _group(removed, lambda k: site_parts(k)[1]).items():
            scored += _scored(old_keys, by_place.get(place, []), threshold, lambda k: site_parts(k)[0])
    else:
        scored = _scored(removed, added, threshold, base)
    found, used_old, used_new = [], set(), set()
    for _, old, new in sorted(scored, key=lambda s: (-s[0], s[1], s[2])):
        if old not in used_old and new not in used_new:
            found.append((old, new))
            used_old.add(old)
            used_new.add(new)
    return found


def _group(keys: list[str], of) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(of(key), []).append(key)
    return groups


def _scored(removed: list[str], added: list[str], threshold: float, name) -> list[tuple[float, str, str]]:
    from rapidfuzz import fuzz, process

    if not removed or not added:
        return []
    cutoff = threshold * 100
    old_names, new_names = [name(k) for k in removed], [name(k) for k in added]
    if len(removed) * len(added) <= FULL_COMPARISON:
        return [
            (score, removed[i], added[j])
            for i, old_name in enumerate(old_names)
            for _, score, j in process.extract(old_name, new_names, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None)
        ]
    order = sorted(range(len(added)), key=lambda j: new_names[j])
    sorted_names = [new_names[j] for j in order]
    scored = []
    for i, old_name in enumerate(old_names):
        at = bisect_left(sorted_names, old_name)
        for j in order[max(0, at - WINDOW // 2) : at + WINDOW // 2]:
            score = fuzz.ratio(old_name, new_names[j], score_cutoff=cutoff)
            if score:
                scored.append((score, removed[i], added[j]))
    return scored


def km_between(a: tuple[float, float] | list | None, b: tuple[float, float] | list | None) -> float:
    """Great-circle distance of two (lat, lon) points; infinite when one is unknown."""
    if not a or not b:
        return math.inf
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371 * math.asin(min(1.0, math.sqrt(h)))


def renamed_cities(removed: list[str], added: list[str], old_show: dict, new_show: dict) -> dict[str, str]:
    """New site key -> old site key for sites whose facility, country and postal
    code are unchanged and whose city the registry renamed (``Napoli`` ->
    ``Naples``): the geoPoints lie within :data:`NEARBY_KM`.  A "Research Site"
    in the next town (another postal code) is another site."""
    candidates: dict[tuple, list[str]] = {}
    for old_key in removed:
        facility, place = site_parts(old_key)
        candidates.setdefault((facility, place.rpartition(" | ")[2], old_show[old_key].get("zip")), []).append(old_key)
    found: dict[str, str] = {}
    for new_key in added:
        facility, place = site_parts(new_key)
        free = candidates.get((facility, place.rpartition(" | ")[2], new_show[new_key].get("zip")), [])
        for old_key in free:
            if km_between(old_show[old_key].get("geo"), new_show[new_key].get("geo")) <= NEARBY_KM:
                found[new_key] = old_key
                free.remove(old_key)
                break
    return found


def align(old: dict, new: dict, old_show: dict, new_show: dict) -> tuple[dict, dict]:
    """Re-key ``new`` items that share a key with others (three "Research Site"s
    in one city) so each pairs with the old item it most likely is: the same
    postal code and content, then the same postal code, then the same content,
    then the rest in order.  One of them changing status is one change."""
    families: dict[str, list[str]] = {}
    for key in new:
        families.setdefault(base(key), []).append(key)
    old_families: dict[str, list[str]] = {}
    for key in old:
        old_families.setdefault(base(key), []).append(key)
    if all(len(keys) == 1 and len(old_families.get(family, [])) <= 1 for family, keys in families.items()):
        return new, new_show

    def zip_of(show: dict, key: str) -> str | None:
        item = show[key]
        return item.get("zip") if isinstance(item, dict) else None

    rules = (
        lambda o, n: (
            zip_of(old_show, o) is not None and zip_of(old_show, o) == zip_of(new_show, n) and old[o] == new[n]
        ),
        lambda o, n: zip_of(old_show, o) is not None and zip_of(old_show, o) == zip_of(new_show, n),
        lambda o, n: old[o] == new[n],
        lambda o, n: True,
    )
    cmp_out: dict[str, Any] = {}
    show_out: dict[str, Any] = {}
    for family, keys in families.items():
        free = list(old_families.get(family, []))
        assigned: dict[str, str] = {}
        for rule in rules:
            for key in keys:
                if key in assigned:
                    continue
                match = next((o for o in free if rule(o, key)), None)
                if match is not None:
                    assigned[key] = match
                    free.remove(match)
        extra = len(old_families.get(family, [])) + 1
        for key in keys:
            if key not in assigned:  # more items than before: new keys
                assigned[key] = family if extra == 1 else f"{family} #{extra}"
                extra += 1
        for key, target in assigned.items():
            cmp_out[target], show_out[target] = new[key], new_show[key]
    return cmp_out, show_out
