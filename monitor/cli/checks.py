"""``monitor check``: the expected-event rules true now across the portfolio."""

from __future__ import annotations

import json
from datetime import date

import click

from monitor.cli.app import EXIT_CHANGES, cli, emit, exit_code_option, format_option, open_store, settings
from monitor.clock import utc_now
from monitor.expected import RULES
from monitor.expected_events import Flag, findings_now
from monitor.messages import markdown_text


def _today(value: str | None) -> date:
    if value is None:
        return utc_now().date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def render_flags(flags: list[Flag], today: date, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"today": today.isoformat(), "flags": [f.to_dict() for f in flags]}, indent=2)
    if not flags:
        return f"No expected-event rule is true on {today.isoformat()}."
    lines = []
    for rule in RULES:
        group = [f for f in flags if f.rule == rule]
        if not group:
            continue
        if fmt == "markdown":
            lines += [f"### {rule} ({len(group)})", "", "| trial | status | finding |", "|---|---|---|"]
            lines += [f"| {f.key} | {_cell(f.status)} | {_cell(f.summary)} |" for f in group]
            lines.append("")
        else:
            lines.append(f"{rule} ({len(group)})")
            lines += [f"  {f.key}  {f.summary}" for f in group]
    return "\n".join(lines).rstrip()


def _cell(text: str | None) -> str:
    """A table cell: escaped like every Markdown value (no link, mention or tag), and no ``|`` or line break."""
    return markdown_text(text or "").replace("|", "\\|").replace("\n", " ")


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
    day = _today(today)
    store = open_store(ctx, create=False, read_only=True)
    flags = findings_now(store, day, settings(ctx).expected, rules or None)
    emit(render_flags(flags, day, fmt), fmt)
    if exit_code and flags:
        ctx.exit(EXIT_CHANGES)
