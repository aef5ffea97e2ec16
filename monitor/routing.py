"""Which route hears about which change (pure).

A route gets an event when at least one of its changes passes the route's
rules: the trial (``trials``), the watch group that found it or that the trial
belongs to (``watches``), the category (``categories``) and the severity
(``min_severity``) and the materiality (``min_materiality``, see
:mod:`monitor.materiality`).  The message then holds only the changes that pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from monitor.config import Route, Settings
from monitor.materiality import DEFAULT, Materiality
from monitor.materiality import RANK as MATERIALITY
from monitor.model import Change

RANK = {"minor": 0, "major": 1}


def passes(route: Route, change: Change, materiality: Materiality = DEFAULT, phases: Iterable[str] = ()) -> bool:
    return (
        (not route.categories or change.category.value in route.categories)
        and RANK[change.severity.value] >= RANK[route.min_severity]
        and (route.min_materiality == "noise" or materiality.rank(change, phases) >= MATERIALITY[route.min_materiality])
    )


def for_route(
    route: Route, changes: Iterable[Change], materiality: Materiality = DEFAULT, phases: Iterable[str] = ()
) -> list[Change]:
    """The changes a route's message shows."""
    return [c for c in changes if passes(route, c, materiality, phases)]


class Router:
    def __init__(
        self,
        routes: Iterable[Route],
        groups_of: Callable[[str], set[str]] = lambda key: set(),
        materiality: Materiality = DEFAULT,
        phases_of: Callable[[str], Iterable[str]] = lambda key: (),
    ) -> None:
        self.routes = tuple(routes)
        self.groups_of = groups_of
        self.materiality = materiality
        self.phases_of = phases_of

    def routes_for(self, key: str, changes: Iterable[Change], group: str | None = None) -> list[str]:
        """The routes that get this trial's changes, found by ``group`` (if known)."""
        changes = list(changes)
        if not changes or not self.routes:
            return []
        groups: set[str] | None = None
        chosen = []
        for route in self.routes:
            if route.trials and key not in route.trials:
                continue
            if route.watches:
                if groups is None:
                    groups = self.groups_of(key) | ({group} if group else set())
                if not groups & set(route.watches):
                    continue
            phases = self.phases_of(key) if route.min_materiality != "noise" else ()
            if for_route(route, changes, self.materiality, phases):
                chosen.append(route.name)
        return chosen


def router_for(
    settings: Settings,
    members: Callable[[str], Iterable[str]],
    phases_of: Callable[[str], Iterable[str]] = lambda key: (),
) -> Router:
    """A router over the configured routes; ``members(query)`` gives a saved
    search's trials, so a trial belongs to the groups that search it;
    ``phases_of(trial)`` its phases (for the materiality rules)."""

    def groups_of(key: str) -> set[str]:
        found = {g.name for g in settings.watches if key in g.trials}
        for group in settings.watches:
            if group.name not in found and any(key in set(members(q)) for q in group.queries):
                found.add(group.name)
        return found

    return Router(settings.notifications.routes, groups_of, Materiality(settings.materiality), phases_of)
