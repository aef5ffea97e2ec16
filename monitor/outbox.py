"""The outbox as a user handles it, one call each: what ``monitor notify test``,
``monitor notify retry`` and ``monitor deliveries`` do, for a Python caller too.

    for tried in test_routes(settings):              # a sample message to every route
        print(tried.route, tried.sent.ok, tried.where)
    queued, report = retry(store, settings)          # every pending delivery sent now
    ledger(store, "failed")                          # the delivery ledger as JSON-ready dicts
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.clock import Clock, utc_now
from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.notify import Notifier, SendReport, Sent, private_url
from monitor.store import Store


class DeliveryError(MonitorError):
    """A test message could not be delivered, or there is no route to send it to."""


@dataclass(frozen=True)
class Tried:
    route: str
    where: str  # the route's URLs, secrets masked (or its tags)
    sent: Sent


def test_routes(settings: Settings, route: str | None = None) -> list[Tried]:
    """Send a sample message to ``route`` (or to every route) now; an unknown route is a
    :class:`~monitor.errors.ConfigError`, no route at all a :class:`DeliveryError`."""
    routes = [settings.notifications.route(route)] if route else list(settings.notifications.routes)
    if not routes:
        raise DeliveryError("no notification routes are configured (notifications.routes in the configuration)")
    notifier = Notifier(None, settings)
    tried = []
    for chosen in routes:
        where = ", ".join(private_url(u) for u in chosen.urls) or ", ".join(f"tag:{t}" for t in chosen.tags)
        tried.append(Tried(chosen.name, where, notifier.test(chosen)))
    return tried


def check_tried(tried: list[Tried]) -> None:
    """:class:`DeliveryError` naming the first route a :func:`test_routes` message did not reach."""
    failed = [t.route for t in tried if not t.sent.ok]
    if failed:
        raise DeliveryError(
            f"the test message did not reach route {failed[0]}"
            + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
        )


def retry(
    store: Store, settings: Settings, include_failed: bool = False, now: Clock = utc_now
) -> tuple[int, SendReport]:
    """Make every pending delivery (and, with ``include_failed``, every one given up) due now
    and send what is due: (deliveries made due, what the sending did).  A delivery another
    sender holds is left to it."""
    queued = store.deliveries.retry_now(now(), include_failed)
    return queued, Notifier(store, settings, now=now).send_due()


def ledger(store: Store, status: str | None = None) -> list[dict]:
    """The delivery ledger (``pending``, ``failed``, ``sent`` or all), one JSON-ready dict a delivery."""
    return [
        {
            "id": d.id,
            "route": d.route,
            "trial": d.trial_key,
            "event": d.event,
            "status": d.status,
            "attempts": d.attempts,
            "created_at": d.created_at.isoformat(),
            "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
            "sent_at": d.sent_at.isoformat() if d.sent_at else None,
            "last_error": d.last_error,
            "claimed_by": d.lease_owner if d.status == "pending" else None,
            "claimed_until": d.lease_until.isoformat() if d.lease_until and d.status == "pending" else None,
        }
        for d in store.deliveries.recent(status)
    ]
