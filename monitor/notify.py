"""Sending notifications (the only module that imports apprise).

:class:`Notifier` works through the delivery ledger: each due ``(event, route)``
row is rendered for the route's channel and handed to Apprise; the row is marked
sent only when Apprise reports success.  A failed send is retried with backoff
(1, 2, 4 ... minutes, at most an hour) across restarts, until the row is older
than ``notifications.max_age_hours``; then it is marked failed and shown by
``monitor status`` and ``monitor deliveries --failed``.  Digest routes collect
their rows and send one message per period.

One sender per delivery: each row is claimed with a lease (:data:`LEASE`)
before it is sent, so two cycles at the same instant, or the daemon and
``monitor notify retry``, never send the same row.  A sender killed while it
held a lease leaves the row pending: it is sent again at once when that sender
ran on this machine and is gone, otherwise once the lease expires.

Delivery is a returned value, never an exception.  Apprise URLs carry tokens
and passwords: only their private form (:func:`private_url`) is ever shown, and
every record of Apprise's own logger goes through the same masking
(:mod:`monitor.masking`), at any verbosity.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor import webhook
from monitor.apprise_urls import is_apprise_url, private_url  # noqa: F401 (is_apprise_url re-exported)
from monitor.clock import Clock, new_id, utc_now
from monitor.config import Route, Settings
from monitor.masking import guard, mask_secrets, remember
from monitor.materiality import Materiality
from monitor.messages import Message, digest_message, event_message, slack_text, trial_context
from monitor.model import Category, Change, ChangeKind, Severity
from monitor.routing import for_route
from monitor.store import Store

log = logging.getLogger(__name__)
guard(logging.getLogger("apprise"))  # Apprise's debug lines carry URLs and tokens

MARKDOWN_SCHEMES = {
    "slack",
    "discord",
    "msteams",
    "mattermost",
    "rocket",
    "rockets",
    "matrix",
    "matrixs",
    "tgram",
    "zulip",
    "gchat",
    "ntfy",
    "ntfys",
    "revolt",
    "guilded",
}
HTML_SCHEMES = {"mailto", "mailtos"}
BACKOFF_START = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
LEASE = timedelta(minutes=10)  # longer than any send can take (Apprise's own timeouts are shorter)


def format_for(route: Route) -> str:
    if route.format:
        return route.format
    schemes = {u.split("://")[0].lower() for u in route.urls}
    if schemes and schemes <= HTML_SCHEMES:
        return "html"
    if schemes and schemes <= MARKDOWN_SCHEMES:
        return "markdown"
    return "text" if schemes else "markdown"


@dataclass(frozen=True)
class Sent:
    ok: bool
    error: str | None = None


class AppriseChannel:
    """Sends a message to a route's Apprise URLs (or its tags in the Apprise config file)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, route: Route, message: Message) -> Sent:
        if message.format == "json":  # the document is the request body, not Apprise's {title, message}

            error = webhook.post(route.urls, message.body)
            return Sent(True) if error is None else Sent(False, _scrub(error, route))
        import apprise

        bundle = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
        slack = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))  # Slack has no escapes
        for url in route.urls:
            remember(url)
            to = slack if message.format == "markdown" and _is_slack(url) else bundle
            to.add(_with_format(url, message.format))
        if route.tags and self.settings.notifications.apprise_config:
            config = apprise.AppriseConfig()
            config.add(self.settings.notifications.apprise_config)
            for server in config.services():  # each with its tags; one reaching Slack gets Slack's text too
                (slack if message.format == "markdown" and _is_slack(server.url()) else bundle).add(server)
        sends = [(b, body) for b, body in ((bundle, message.body), (slack, slack_text(message.body))) if len(b)]
        body_format = {
            "text": apprise.NotifyFormat.TEXT,
            "markdown": apprise.NotifyFormat.MARKDOWN,
            "html": apprise.NotifyFormat.HTML,
        }[message.format]
        errors: list[str] = []
        tags = list(route.tags) or apprise.common.MATCH_ALL_TAG
        handler = _Collect(errors)
        apprise_log = logging.getLogger("apprise")
        apprise_log.addHandler(handler)
        try:
            ok = all(
                [
                    b.notify(body=body, title=message.title, body_format=body_format, tag=tags)
                    for b, body in sends or [(bundle, message.body)]
                ]
            )
        except Exception as exc:  # a channel's bug must not take the sender down
            ok, errors = False, [f"{exc.__class__.__name__}: {exc}"]
        finally:
            apprise_log.removeHandler(handler)
        if ok:
            return Sent(True)
        return Sent(False, _scrub(errors[-1] if errors else "Apprise reported a failure", route))


def _is_slack(url: str) -> bool:
    scheme, _, rest = url.partition("://")
    return scheme.lower() == "slack" or rest.lower().startswith("hooks.slack.com/")


def _with_format(url: str, fmt: str) -> str:
    """E-mail goes out as plain text unless the URL asks otherwise: ask for HTML
    when the message is HTML (and the user's URL did not choose)."""
    if fmt == "html" and url.split("://")[0].lower() in HTML_SCHEMES and "format=" not in url:
        return url + ("&" if "?" in url else "?") + "format=html"
    return url


class _Collect(logging.Handler):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(record.getMessage())


def _scrub(text: str, route: Route) -> str:
    """An error text without the route's URLs or their secrets."""
    for url in route.urls:
        remember(url)
        text = text.replace(url, private_url(url))
    return " ".join(mask_secrets(text).split())[:300]


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)


class Notifier:
    def __init__(self, store: Store, settings: Settings, channel=None, now: Clock = utc_now) -> None:
        self.store, self.settings, self.now = store, settings, now
        self.channel = channel or AppriseChannel(settings)
        self.owner = f"{_PROCESS}:{os.getpid()}:{new_id()}"

    def send_due(self) -> SendReport:
        """Send every delivery that is due; digests when their time has come."""
        report = SendReport()
        self._release_dead_senders()
        for route in self.settings.notifications.routes:
            if route.digest:
                self._digest(route, report)
            else:
                for delivery in self.store.deliveries.due_deliveries(route.name, self.now()):
                    now = self.now()
                    if self.store.deliveries.claim([delivery.id], self.owner, now, now + LEASE):
                        self._one(route, delivery, report)
        return report

    def _release_dead_senders(self) -> None:
        """Claims of a sender that died on this machine (a daemon killed before
        its restart) are given back at once rather than when they expire; a
        sender elsewhere, or alive, keeps its claim."""
        for owner in self.store.deliveries.lease_owners(self.now()):
            if _died_here(owner):
                self.store.deliveries.release(None, owner)
                log.info("deliveries claimed by %s (no longer running) are sent again", owner)

    def _materiality(self, event):
        """The materiality rules (with the configuration's levels) and the trial's phases."""
        phases = event.version.record.phases if event.version else ()
        return Materiality(self.settings.materiality), phases

    def _one(self, route: Route, delivery, report: SendReport) -> None:
        event = self.store.deliveries.event(delivery.event)
        changes = for_route(route, event.changes, *self._materiality(event))
        if not changes:  # the route's rules changed since: nothing to say
            self.store.deliveries.mark_sent([delivery.id], self.now())
            return
        version = event.version.number if event.version else None
        if format_for(route) == "json":  # a machine-readable webhook (monitor.webhook)

            self._deliver(route, [delivery], webhook.event_message(event, changes, self.now()), report)
            return
        judge, phases = self._materiality(event)
        message = event_message(
            event.trial_key,
            event.title,
            changes,
            format_for(route),
            version,
            event.previous,
            self.settings.notifications.templates,
            judge.top(changes, phases),
        )
        self._deliver(route, [delivery], message, report)

    def _digest(self, route: Route, report: SendReport) -> None:
        if not self._digest_due(route):
            return
        pending = self.store.deliveries.due_deliveries(route.name)
        if not pending:
            self.store.service.set_state(f"digest.{route.name}.last", self.now().isoformat())
            return
        retry_at = self.store.service.get_state(f"digest.{route.name}.retry_at")
        if retry_at and datetime.fromisoformat(retry_at) > self.now():
            return
        ids = [d.id for d in pending]
        claimed = self.store.deliveries.claim(ids, self.owner, self.now(), self.now() + LEASE, due=False)
        if len(claimed) != len(ids):  # another sender is on this digest: leave it whole to them
            self.store.deliveries.release(claimed, self.owner)
            log.debug("digest of route %s: another sender holds some of its deliveries", route.name)
            return
        trials: dict[str, dict] = {}
        events = []
        for delivery in pending:
            event = self.store.deliveries.event(delivery.event)
            changes = for_route(route, event.changes, *self._materiality(event))
            if not changes:
                continue
            events.append((event, changes))
            judge, phases = self._materiality(event)
            merged = (trials[event.trial_key]["_changes"] if event.trial_key in trials else []) + changes
            context = trial_context(event.trial_key, event.title, merged, material=judge.top(merged, phases))
            context["_changes"] = merged
            context["materiality"] = max(judge.rank(c, phases) for c in merged)  # digests sort by it
            trials[event.trial_key] = context
        if not trials:
            self.store.deliveries.mark_sent([d.id for d in pending], self.now())
            return
        if format_for(route) == "json":  # a machine-readable webhook (monitor.webhook)

            message = webhook.digest_message(route.name, route.digest, events, self.now())
        else:
            message = digest_message(
                route.name,
                route.digest,
                list(trials.values()),
                format_for(route),
                self.settings.notifications.templates,
            )
        if self._deliver(route, pending, message, report):
            self.store.service.set_state(f"digest.{route.name}.last", self.now().isoformat())
            self.store.service.set_state(f"digest.{route.name}.retry_at", "")
        else:
            attempts = max(d.attempts for d in pending) + 1
            self.store.service.set_state(f"digest.{route.name}.retry_at", (self.now() + _backoff(attempts)).isoformat())

    def _digest_due(self, route: Route) -> bool:
        """Due once per period: when a period boundary has passed since the
        last digest (or since the route was first seen)."""
        last = self.store.service.get_state(f"digest.{route.name}.last")
        if not last:
            self.store.service.set_state(f"digest.{route.name}.last", self.now().isoformat())
            return False
        return datetime.fromisoformat(last) < last_boundary(route, self.now())

    def _deliver(self, route: Route, rows, message: Message, report: SendReport) -> bool:
        sent = self.channel.send(route, message)
        ids = [d.id for d in rows]
        if sent.ok:
            self.store.deliveries.mark_sent(ids, self.now())
            report.sent += len(ids)
            log.info("notified route=%s trials=%s", route.name, ",".join(sorted({d.trial_key for d in rows})))
            return True
        attempts = max(d.attempts for d in rows) + 1
        give_up = self.now() - timedelta(hours=self.settings.notifications.max_age_hours)
        retry_at = self.now() + _backoff(attempts)
        failed = self.store.deliveries.mark_attempt_failed(ids, sent.error or "failed", retry_at, give_up)
        report.failed += failed
        report.retrying += len(ids) - failed
        problem = f"route {route.name}: {sent.error}" + (" (given up)" if failed else " (will retry)")
        report.problems.append(problem)
        log.warning("%s", problem)
        return False

    def test(self, route: Route) -> Sent:
        """Send a sample message to a route."""
        sample = [
            Change(
                Category.STATUS,
                "overall_status",
                ChangeKind.MODIFIED,
                "RECRUITING",
                "TERMINATED",
                Severity.MAJOR,
                "Overall status RECRUITING -> TERMINATED",
            ),
            Change(
                Category.ENROLLMENT,
                "enrollment",
                ChangeKind.MODIFIED,
                {"count": 263, "type": "ESTIMATED"},
                {"count": 99, "type": "ACTUAL"},
                Severity.MAJOR,
                "Enrollment lowered: 263 ESTIMATED -> 99 ACTUAL",
            ),
        ]
        message = event_message(
            "NCT00000000",
            "A sample trial (a test message from registry-monitor)",
            sample,
            format_for(route),
            2,
            1,
            self.settings.notifications.templates,
        )
        return self.channel.send(route, message)


def _machine() -> str:
    """This machine (its boot) and PID namespace, where a PID means one process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot_id:
            boot = boot_id.read().strip()[:8]
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return f"{socket.gethostname()[:20]}:?"  # cannot tell: claims from here are never given back early
    return f"{socket.gethostname()[:20]}:{boot}.{namespace}"


# A claim's owner is "<host>:<boot>.<namespace>:<pid>:<nonce>".
_PROCESS = _machine()


def _died_here(owner: str) -> bool:
    """Whether ``owner`` was a sender of this machine (and PID namespace) that is no longer running."""
    place, _, rest = owner.rpartition(":")[0].rpartition(":")
    if place != _PROCESS or place.endswith(":?") or not rest.isdigit() or int(rest) == os.getpid():
        return False
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but not ours to signal
        return False
    return False


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_MAX, BACKOFF_START * 2 ** max(0, attempts - 1))


_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def last_boundary(route: Route, now: datetime) -> datetime:
    """The latest time at or before ``now`` when the route's digest was due (UTC)."""
    if route.digest == "hourly":
        minute = int(route.at.split(":")[-1])
        boundary = now.replace(minute=minute, second=0, microsecond=0)
        return boundary if boundary <= now else boundary - timedelta(hours=1)
    hour, minute = (int(x) for x in route.at.split(":"))
    boundary = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if boundary > now:
        boundary -= timedelta(days=1)
    if route.digest == "weekly":
        while boundary.weekday() != _WEEKDAYS.index(route.weekday):
            boundary -= timedelta(days=1)
    return boundary
