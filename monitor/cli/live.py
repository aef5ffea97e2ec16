"""Commands that follow ClinicalTrials.gov: fetch, backfill, watch add|list|remove
(each one call of :mod:`monitor.watching`)."""

from __future__ import annotations

import click

from monitor.cli.app import (
    EXIT_CHANGES,
    ProgressBar,
    cli,
    exit_code_option,
    format_option,
    open_store,
    output,
    settings,
    stoppable,
    warn,
)
from monitor.errors import NotFoundError


@cli.command()
@click.argument("nct_ids", nargs=-1, metavar="[NCT_ID...]")
@format_option
@exit_code_option
@click.pass_context
def fetch(ctx: click.Context, nct_ids: tuple[str, ...], fmt: str, exit_code: bool) -> None:
    """Fetch trials from ClinicalTrials.gov now, store them, report what changed.

    With NCT ids, those trials are fetched in full (batched).  Without, one
    polling cycle runs over every watch: the registry's data timestamp, saved
    searches, a cheap probe of every watched trial, then full records only for
    the trials whose last-update date moved.
    """
    # deferred: monitor.watching loads the registry client and the store (start-up of `monitor --help`)
    from monitor import watching

    keys = watching.checked(nct_ids)  # a bad id before the database is opened
    with stoppable("run `monitor fetch` again to go on") as should_stop:  # SIGTERM: between two trials, exit 143
        with ProgressBar("fetching") as bar:
            report = watching.fetch(open_store(ctx), settings(ctx), keys, progress=bar, should_stop=should_stop)
        if report.skipped:
            click.echo("ClinicalTrials.gov has not changed since the last cycle: nothing to fetch")
        output("results", fmt, report.results, config=settings(ctx))
        for key, event in report.membership:
            click.echo(f"{key}: {event.summary}")
        warn(report.problems)
        watching.check_fetched(report, keys)
    if exit_code and (report.changed or report.membership):
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("nct_ids", nargs=-1, required=True, metavar="NCT_ID...")
@click.pass_context
def backfill(ctx: click.Context, nct_ids: tuple[str, ...]) -> None:
    """Store a trial's past versions from the registry's version history.

    Versions older than the earliest stored one are put before it, in date
    order, so `monitor history` and `monitor diff --from/--to` reach back to the
    trial's registration.
    """
    # deferred: monitor.watching loads the registry client and the store (start-up of `monitor --help`)
    from monitor import watching

    keys = watching.checked(nct_ids)  # a bad id before the database is opened
    problems: dict[str, str] = {}
    with ProgressBar("backfilling") as bar:
        for key, added in watching.backfill(open_store(ctx), settings(ctx), keys, progress=bar, problems=problems):
            click.echo(f"{key}: {added} past version{'s' if added != 1 else ''} added")
    if len(keys) == 1 and problems:
        raise watching.FetchError(problems[keys[0]])
    warn(list(problems.values()))
    if problems:  # one bad trial never stops the others; the call still fails
        raise watching.FetchError(
            f"not backfilled: {', '.join(problems)} ({len(problems)} of {len(keys)}; the others are); "
            "the reasons are above"
        )


@cli.group()
def watch() -> None:
    """Trials and saved searches to follow on ClinicalTrials.gov."""


@watch.command("add")
@click.argument("nct_ids", nargs=-1, metavar="NCT_ID...")
@click.option(
    "--query",
    "queries",
    multiple=True,
    metavar="QUERY",
    help="A saved search as API parameters, e.g. 'query.cond=lupus&query.intr=CAR-NK'.",
)
@click.option("--no-backfill", is_flag=True, help="Do not fetch the trials' past versions now.")
@click.option(
    "--all",
    "whole",
    is_flag=True,
    help="Watch the whole registry: load every study now (resumable), then ask only what changed.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=200,
    show_default=True,
    help="Studies a request in the --all load.",
)
@format_option
@click.pass_context
def watch_add(
    ctx: click.Context,
    nct_ids: tuple[str, ...],
    queries: tuple[str, ...],
    no_backfill: bool,
    whole: bool,
    page_size: int,
    fmt: str,
) -> None:
    """Start watching trials or saved searches.

    A trial is fetched now, with its past versions from the registry's history
    (unless --no-backfill).  A saved search is run now to set its baseline; its
    trials become watched (their past versions are fetched over the next
    cycles), and trials entering or leaving it later are events.
    """
    # deferred: monitor.watching loads the registry client and the store (start-up of `monitor --help`)
    from monitor import watching

    if whole:
        if nct_ids or queries:
            raise click.UsageError("--all watches every trial: name no trials or searches with it")
        return _watch_all(ctx, page_size, fmt)
    if not nct_ids and not queries:
        raise click.UsageError("name trials (NCT ids), --query searches or --all to watch")
    keys = watching.checked(nct_ids, queries)  # a bad id or search before the database is opened
    with ProgressBar("watching") as bar:
        report = watching.watch(open_store(ctx), settings(ctx), keys, queries, backfill=not no_backfill, progress=bar)
    for note in report.notes:
        click.echo(note)
    output("results", fmt, report.results, config=settings(ctx))
    warn(report.problems)


def _watch_all(ctx: click.Context, page_size: int, fmt: str) -> None:
    """The first load of the whole registry; SIGTERM stops it between two trials, resumably (exit 143)."""
    # deferred: monitor.watching loads the registry client and the store (start-up of `monitor --help`)
    from monitor.summaries import plural
    from monitor.watching import FetchError, watch_registry

    with stoppable("run `monitor watch add --all` again to resume") as should_stop:
        with ProgressBar("loading the registry") as bar:
            report = watch_registry(open_store(ctx), settings(ctx), page_size, bar, should_stop)
        output("results", fmt, report.results, config=settings(ctx))
    click.echo(f"the whole registry: {plural(report.probed, 'trial')} read, watched from now on")
    warn(report.problems)
    if report.problems:  # a record refused (its path above) or not stored: exit 2, as fetch does
        raise FetchError(
            f"{plural(len(report.problems), 'trial problem')} (above and in `monitor status`); the others are stored"
        )


@watch.command("remove")
@click.argument("nct_ids", nargs=-1, metavar="NCT_ID...")
@click.option("--query", "queries", multiple=True, metavar="QUERY", help="A saved search to stop following.")
@click.pass_context
def watch_remove(ctx: click.Context, nct_ids: tuple[str, ...], queries: tuple[str, ...]) -> None:
    """Stop watching trials or saved searches; their stored history stays."""
    # deferred: monitor.watching loads the registry client and the store (start-up of `monitor --help`)
    from monitor.watching import unwatch

    if not nct_ids and not queries:
        raise click.UsageError("name trials (NCT ids) or --query searches to stop watching")
    done = unwatch(open_store(ctx, create=False), nct_ids, queries)
    for target in done.removed:
        click.echo(f"{target}: no longer watched")
    if done.missing:
        raise NotFoundError(f"{done.missing[0]} was not watched (see `monitor watch list`)")
