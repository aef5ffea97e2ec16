"""The service's key-value state and the daemon's lock (the service concern: ``store.service``).

``source_state`` holds small named values: the live source's watermarks, a saved search's
baseline mark, the daemon's run times, and the lock ``{"owner", "since", "beat"}`` that
keeps one daemon per database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from monitor.store.database import Concern
from monitor.store.schema import source_state


class ServiceState(Concern):
    """Named values and the daemon's lock."""

    def get_state(self, key: str) -> str | None:
        with self._reading() as conn:
            return conn.execute(select(source_state.c.value).where(source_state.c.key == key)).scalar()

    def set_state(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            self._put_state(conn, key, value)

    def set_states(self, values: dict[str, str]) -> None:
        """:meth:`set_state` for several keys in one transaction (a load's page token and its counts)."""
        with self.engine.begin() as conn:
            for key, value in values.items():
                self._put_state(conn, key, value)

    def _put_state(self, conn, key: str, value: str) -> None:
        done = conn.execute(source_state.update().where(source_state.c.key == key).values(value=value))
        if done.rowcount == 0:
            conn.execute(insert(source_state).values(key=key, value=value))

    def state_with_prefix(self, prefix: str) -> dict[str, str]:
        with self._reading() as conn:
            rows = conn.execute(select(source_state).where(source_state.c.key.startswith(prefix)))
            return {r.key: r.value for r in rows}

    # --- the daemon's lock ----------------------------------------------------------------

    def take_lock(self, name: str, owner: str, now: datetime, stale: Callable[[dict], bool]) -> dict | None:
        """Take the lock ``name`` for ``owner``; None when taken, else the holder
        (``{"owner", "since", "beat"}``).  Insertion is the atomic step: of two
        processes racing for a free lock, one insert fails.  A holder that
        ``stale`` judges dead is replaced, compare-and-swap."""
        mine = json.dumps({"owner": owner, "since": now.isoformat(), "beat": now.isoformat()})
        for _ in range(3):
            with self._reading() as conn:
                held = conn.execute(select(source_state.c.value).where(source_state.c.key == name)).scalar()
            if held is not None:
                holder = json.loads(held)
                if holder.get("owner") == owner:
                    return None
                if not stale(holder):
                    return holder
                with self.engine.begin() as conn:  # replace a dead holder, unless someone else just did
                    conn.execute(
                        source_state.delete().where((source_state.c.key == name) & (source_state.c.value == held))
                    )
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(source_state).values(key=name, value=mine))
                return None
            except IntegrityError:
                continue
        with self._reading() as conn:
            held = conn.execute(select(source_state.c.value).where(source_state.c.key == name)).scalar()
        return json.loads(held) if held else {"owner": "unknown"}

    def beat_lock(self, name: str, owner: str, now: datetime) -> bool:
        """Refresh the lock's heartbeat; False when it is no longer ours."""
        with self.engine.begin() as conn:
            held = conn.execute(select(source_state.c.value).where(source_state.c.key == name)).scalar()
            if held is None or json.loads(held).get("owner") != owner:
                return False
            holder = {**json.loads(held), "beat": now.isoformat()}
            conn.execute(source_state.update().where(source_state.c.key == name).values(value=json.dumps(holder)))
        return True

    def release_lock(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            held = conn.execute(select(source_state.c.value).where(source_state.c.key == name)).scalar()
            if held is not None and json.loads(held).get("owner") == owner:
                conn.execute(source_state.delete().where(source_state.c.key == name))

    def lock_holder(self, name: str) -> dict | None:
        value = self.get_state(name)
        return json.loads(value) if value else None
