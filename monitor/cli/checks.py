"""``monitor check``: the expected-event rules true now across the portfolio."""

from __future__ import annotations

from datetime import date

import click

from monitor.cli.app import EXIT_CHANGES, cli, emit, exit_code_option, format_option, open_store, settings
from monitor.clock import utc_now
from monitor.expected import RULES


def _today(value: str | None) -> date:
    if value is None:
        return utc_now().date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@cli.command()
@click.option("--rule", "rules", multiple=True, type=click.Choice(list(RULES)), help="Only this rule (repeatable).")
@click.option("--today", metavar="YYYY-MM-DD", help="Evaluate as of this date [default: today, UTC].")
@format_option
@exit_code_option
@click.pass_context
def check(ctx: click.Context, rules: tuple[str, ...], today: str | None, fmt: str, exit_code: bool) -> None:
    """List the expected-event rules true now for every stored trial.

    completion-passed, results-overdue, verification-stale and inconsistent
    are read from the latest stored version of each trial (see the README).
    Nothing is stored or sent: the service records and notifies these after
    each cycle.
    """
    from monitor.expected_events import findings_now, render_flags  # deferred: it loads SQLAlchemy (start-up of --help)

    day = _today(today)
    store = open_store(ctx, create=False, read_only=True)
    flags = findings_now(store, day, settings(ctx).expected, rules or None)
    emit(render_flags(flags, day, fmt), fmt)
    if exit_code and flags:
        ctx.exit(EXIT_CHANGES)
