"""Commands over the whole portfolio: changes, watch list (and serve, in cli/web.py)."""

from __future__ import annotations

import click

from monitor.cli.app import cli, emit, open_store, settings
from monitor.cli.live import watch
from monitor.clock import utc_now

FEED_FORMATS = ("text", "markdown", "json", "csv", "ndjson")
feed_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FEED_FORMATS),
    default="text",
    show_default=True,
    help="Output format (csv: one row per change, for a spreadsheet; ndjson: one JSON object a line).",
)


@cli.command()
@click.option("--since", metavar="WHEN", help="Detected at or after: a date (2026-03-01), 24h, 7d, 2w.")
@click.option("--until", metavar="WHEN", help="Detected before: a date, a date-time, or a span ago (7d).")
@click.option("--watch", "watches", multiple=True, metavar="GROUP", help="Trials of this watch group (repeatable).")
@click.option("--trial", "trials", multiple=True, metavar="ID", help="This trial (repeatable).")
@click.option("--category", "categories", multiple=True, metavar="CATEGORY", help="This category (repeatable).")
@click.option("--min-severity", type=click.Choice(["minor", "major"]), help="Only changes at least this severe.")
@click.option("--include-backfill", is_flag=True, help="Also the changes found in backfilled history.")
@click.option("--limit", type=int, metavar="N", help="At most N changes (the newest).")
@feed_format_option
@click.pass_context
def changes(ctx: click.Context, fmt: str, **options) -> None:
    """Every stored change across trials, newest first, one line each.

    Changes found in backfilled history (`monitor backfill`, `watch add`) are
    history, not news: they are left out unless --include-backfill.
    """
    # deferred: these load the normalizers, the field table and more (start-up of `monitor --help`)
    from monitor.feed import render_changes
    from monitor.portfolio import ChangeFilter
    from monitor.portfolio import changes as find

    wanted = ChangeFilter(**options)
    found = find(open_store(ctx, create=False, read_only=True), settings(ctx), wanted, utc_now())
    emit(render_changes(fmt, found), "text" if fmt == "text" else "raw")


@watch.command("list")
@click.option("--watch", "groups", multiple=True, metavar="GROUP", help="Only this watch group (repeatable).")
@click.option("--format", "fmt", type=click.Choice(FEED_FORMATS), default="text", show_default=True)
@click.pass_context
def watch_list(ctx: click.Context, groups: tuple[str, ...], fmt: str) -> None:
    """The portfolio: every stored or watched trial with its status, groups,
    versions, last change, last check and last error; then the saved searches."""
    # deferred: these load the normalizers, the field table and more (start-up of `monitor --help`)
    from monitor.feed import render_portfolio
    from monitor.portfolio import portfolio
    from monitor.summaries import plural

    store = open_store(ctx, create=False, read_only=True)
    rows = portfolio(store, settings(ctx), groups)
    emit(render_portfolio(fmt, rows), "raw")
    if fmt != "text":
        return
    watches = store.watches.all()
    if not watches:
        click.echo("nothing is watched: add trials with `monitor watch add NCT_ID`, or searches with --query")
    for w in watches:
        if w.kind == "query":
            click.echo(f"query  {w.target}  ({plural(w.members, 'trial')})  since {w.added_at:%Y-%m-%d}")
