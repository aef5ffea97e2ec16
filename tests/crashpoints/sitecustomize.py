"""Loaded by a `monitor run` started with this folder first on PYTHONPATH: kills the
process with SIGKILL at the point CRASH_AT names, on its CRASH_ON-th passage.

    before_store   a fetched record, before its version is written (alone, or in its batch:
                   the CRASH_ON-th version of a batch kills before the batch is written)
    before_notify  versions written, before any notification is sent
    during_send    a message handed to the channel, before it goes out
    after_send     a message sent (the channel said yes), before its row is marked sent
"""

import os
import signal

POINT = os.environ.get("CRASH_AT")
ON = int(os.environ.get("CRASH_ON", "1"))
passages = {"n": 0}


def _maybe_die() -> None:
    passages["n"] += 1
    if passages["n"] == ON:
        os.kill(os.getpid(), signal.SIGKILL)


if POINT:
    from monitor import notify
    from monitor.store import bulk, versions

    if POINT == "before_store":
        original_add = versions.VersionStore.add_version

        def add_version(self, *args, **kwargs):
            _maybe_die()
            return original_add(self, *args, **kwargs)

        versions.VersionStore.add_version = add_version
        original_add_many = bulk.BulkStore.add_versions

        def add_versions(self, batch):
            for _ in batch:
                _maybe_die()
            return original_add_many(self, batch)

        bulk.BulkStore.add_versions = add_versions
    elif POINT == "before_notify":
        original_send_due = notify.Notifier.send_due

        def send_due(self):
            if self.store.deliveries.delivery_counts()["pending"]:
                _maybe_die()
            return original_send_due(self)

        notify.Notifier.send_due = send_due
    else:
        original_send = notify.AppriseChannel.send

        def send(self, route, message):
            if POINT == "during_send":
                _maybe_die()
            sent = original_send(self, route, message)
            if POINT == "after_send":
                _maybe_die()
            return sent

        notify.AppriseChannel.send = send
