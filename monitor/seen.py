"""What we last saw of each trial in the registry, read only as far as a cycle needs it; a watch
set's fingerprint (:func:`fingerprint`), which tells an unchanged one without reading it.

:meth:`monitor.store.watches.WatchStore.last_seen` reads every trial's head and fetch state: at the
whole registry (570,000 trials) about 11 s of CPU.  A cycle rarely needs all of it: an unchanged
cycle none, a registry day only the few thousand trials the change query answered.
:class:`LastSeen` is the mapping a cycle's plan reads (``cycle.seen``): :meth:`LastSeen.load`
reads the trials named (a few queries a thousand trials), and any other use (a key not loaded,
iterating, ``len``) reads everything once, as before, so a plan that needs it all still has it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping

from monitor.errors import NotFoundError

Seen = tuple[str | None, str | None]  # (last-update date, overall status)
WHOLE_READ = 20_000  # more trials than this are read with everything else, in one pass


class LastSeen(Mapping[str, Seen]):
    """Trial key -> (last-update date, status) we last saw (:meth:`WatchStore.last_seen`), read lazily."""

    def __init__(self, watches) -> None:
        self.watches = watches  # a monitor.store.watches.WatchStore
        self.known: dict[str, Seen] = {}
        self.loaded: set[str] = set()  # keys read already (seen or not)
        self.whole = False  # every trial read

    def load(self, keys: Iterable[str]) -> LastSeen:
        """Read what we saw of ``keys`` (those not read yet): no other trial is read."""
        if not self.whole:
            wanted = [k for k in dict.fromkeys(keys) if k not in self.loaded]
            if len(wanted) > WHOLE_READ:  # one pass over the tables costs less than so many lookups
                self.all()
            elif wanted:
                self.known.update(self.watches.last_seen(wanted))
                self.loaded.update(wanted)
        return self

    def all(self) -> dict[str, Seen]:
        """Every trial's, read once."""
        if not self.whole:
            self.known, self.whole = self.watches.last_seen(), True
        return self.known

    def __getitem__(self, key: str) -> Seen:
        if self.whole or key in self.loaded:
            return self.known[key]
        return self.all()[key]

    def __contains__(self, key: object) -> bool:
        if self.whole or key in self.loaded:
            return key in self.known
        return key in self.all()

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self.all())


def fingerprint(store, trials: Iterable[str] | None, queries: Iterable[str] | None) -> str | None:
    """A watch set in a few dozen bytes: its ids as given and each saved search's members, hashed
    (no sort of the ids, no read of every watch); None for every watch (``trials`` and ``queries``
    None), which it does not tell."""
    if trials is None and queries is None:
        return None
    trials = trials if isinstance(trials, tuple | list) else list(trials or ())
    queries = list(queries or ())
    digest = hashlib.sha1(_ids_digest(trials))
    for query in queries:
        digest.update(("\n\0" + query + "\n").encode())
        try:
            members = store.watches.members(query)
        except NotFoundError:  # not watched yet: registered by this cycle
            members = None
        digest.update(("\0none" if members is None else "\n".join(sorted(members))).encode())
    return f"{len(trials)}:{len(queries)}:{digest.hexdigest()}"


_DIGESTS: dict[int, tuple[tuple[str, ...], bytes]] = {}  # id of a configuration's id tuple -> (it, its digest)


def _ids_digest(trials: Iterable[str]) -> bytes:
    """The digest of a list of ids; a configuration's tuple (the same object every cycle of a daemon) is
    hashed once (570,000 ids: about 0.1 s)."""
    if isinstance(trials, tuple) and (hit := _DIGESTS.get(id(trials))) is not None and hit[0] is trials:
        return hit[1]
    digest = hashlib.sha1("\n".join(trials).encode()).digest()
    if isinstance(trials, tuple):
        if len(_DIGESTS) >= 16:  # a few groups' configurations; a reloaded one replaces the old
            _DIGESTS.clear()
        _DIGESTS[id(trials)] = (trials, digest)
    return digest
