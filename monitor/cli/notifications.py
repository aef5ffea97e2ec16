"""Notification commands: notify test, notify retry, deliveries."""

from __future__ import annotations

import click

from monitor.cli.app import open_store, settings, warn


@click.group()
def notify() -> None:
    """Notification routes: send a test message, retry what is pending."""


@notify.command("test")
@click.argument("route", required=False)
@click.pass_context
def notify_test(ctx: click.Context, route: str | None) -> None:
    """Send a sample message to ROUTE (or to every route) now."""
    # deferred: the outbox loads Apprise and the store (start-up of `monitor --help`)
    from monitor.outbox import check_tried, test_routes

    tried = test_routes(settings(ctx), route)
    for t in tried:
        click.echo(
            f"{t.route}: {'sent' if t.sent.ok else 'FAILED'} ({t.where})" + ("" if t.sent.ok else f": {t.sent.error}")
        )
    check_tried(tried)


@notify.command("retry")
@click.option("--failed", "include_failed", is_flag=True, help="Also retry deliveries already given up.")
@click.pass_context
def notify_retry(ctx: click.Context, include_failed: bool) -> None:
    """Send every pending delivery now, without waiting for its next attempt.

    A delivery another sender (the daemon) is sending is left to it; one claimed
    by a sender that died is sent at once (same machine) or when its claim
    expires (10 minutes)."""
    # deferred: the outbox loads Apprise and the store (start-up of `monitor --help`)
    from monitor.outbox import retry

    config = settings(ctx)
    queued, report = retry(open_store(ctx, create=False), config, include_failed)
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
    store = open_store(ctx, create=False, read_only=True)
    if fmt == "json":
        # deferred: the outbox and the renderer load the store and the normalizers (start-up of `monitor --help`)
        from monitor.outbox import ledger
        from monitor.render import to_json

        click.echo(to_json(ledger(store, status)))
        return
    rows = store.deliveries.recent(status)
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
