"""Notification commands: notify test, notify retry, deliveries."""

from __future__ import annotations

import click

from monitor.cli.app import open_store, settings, warn
from monitor.clock import utc_now
from monitor.errors import MonitorError


class DeliveryError(MonitorError):
    """A test message could not be delivered."""


@click.group()
def notify() -> None:
    """Notification routes: send a test message, retry what is pending."""


@notify.command("test")
@click.argument("route", required=False)
@click.pass_context
def notify_test(ctx: click.Context, route: str | None) -> None:
    """Send a sample message to ROUTE (or to every route) now."""
    from monitor.notify import Notifier, private_url

    config = settings(ctx)
    routes = [config.notifications.route(route)] if route else list(config.notifications.routes)
    if not routes:
        raise DeliveryError("no notification routes are configured (notifications.routes in the configuration)")
    notifier = Notifier(None, config)
    failed = []
    for chosen in routes:
        sent = notifier.test(chosen)
        where = ", ".join(private_url(u) for u in chosen.urls) or ", ".join(f"tag:{t}" for t in chosen.tags)
        click.echo(
            f"{chosen.name}: {'sent' if sent.ok else 'FAILED'} ({where})" + ("" if sent.ok else f": {sent.error}")
        )
        if not sent.ok:
            failed.append(chosen.name)
    if failed:
        raise DeliveryError(
            f"the test message did not reach route {failed[0]}"
            + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
        )


@notify.command("retry")
@click.option("--failed", "include_failed", is_flag=True, help="Also retry deliveries already given up.")
@click.pass_context
def notify_retry(ctx: click.Context, include_failed: bool) -> None:
    """Send every pending delivery now, without waiting for its next attempt.

    A delivery another sender (the daemon) is sending is left to it; one claimed
    by a sender that died is sent at once (same machine) or when its claim
    expires (10 minutes)."""
    from monitor.notify import Notifier

    config = settings(ctx)
    store = open_store(ctx, create=False)
    queued = store.deliveries.retry_now(utc_now(), include_failed)
    report = Notifier(store, config).send_due()
    click.echo(f"{queued} due; {report.sent} sent, {report.retrying} to retry, {report.failed} given up")
    warn(report.problems)


@click.command()
@click.option("--pending", "status", flag_value="pending", help="Only deliveries waiting to be sent.")
@click.option("--failed", "status", flag_value="failed", help="Only deliveries given up.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
@click.pass_context
def deliveries(ctx: click.Context, status: str | None, fmt: str) -> None:
    """The delivery ledger: each (event, route) with its state, attempts and last error."""
    rows = open_store(ctx, create=False, read_only=True).deliveries.recent(status)
    if fmt == "json":
        from monitor.render import to_json

        click.echo(
            to_json(
                [
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
                    for d in rows
                ]
            )
        )
        return
    if not rows:
        click.echo("no deliveries" + (f" {status}" if status else ""))
    for d in rows:
        when = d.sent_at if d.status == "sent" else d.next_attempt_at
        error = f"  last error: {d.last_error}" if d.last_error and d.status != "sent" else ""
        claim = (
            f"  claimed by {d.lease_owner} until {d.lease_until:%Y-%m-%d %H:%M}"
            if d.lease_until and d.status == "pending"
            else ""
        )
        click.echo(
            f"{d.id:>6} {d.status:<8} {d.route:<16} {d.trial_key:<14} attempts={d.attempts} "
            f"{'sent' if d.status == 'sent' else 'next'} {when:%Y-%m-%d %H:%M}{claim}{error}"
        )
