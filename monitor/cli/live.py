"""Commands that follow ClinicalTrials.gov: fetch, backfill, watch add|list|remove."""

from __future__ import annotations

import click

from monitor.cli.app import (
    EXIT_CHANGES,
    IncompleteError,
    ProgressBar,
    cli,
    exit_code_option,
    format_option,
    live_source,
    open_store,
    output,
    settings,
    warn,
)
from monitor.clock import utc_now
from monitor.errors import MonitorError
from monitor.summaries import plural


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
    from monitor.live import CycleReport
    from monitor.sources.registry import by_source, check_key

    keys = [check_key(n) for n in nct_ids]
    with ProgressBar("fetching") as bar:
        if keys:  # each key from its own registry
            report = CycleReport()
            for source, of_source in by_source(keys).items():
                live_source(ctx, progress=bar, source=source).fetch(of_source, report)
        else:
            report = live_source(ctx, progress=bar).cycle()
    if report.skipped:
        click.echo("ClinicalTrials.gov has not changed since the last cycle: nothing to fetch")
    output("results", fmt, report.results, config=settings(ctx))
    for key, event in report.membership:
        click.echo(f"{key}: {event.summary}")
    warn(report.problems)
    if not report.complete:
        raise IncompleteError("the cycle could not finish; what was fetched is stored, the rest is retried next time")
    stored = {r.key for r in report.results}
    missed = [k for k in dict.fromkeys(keys) if k not in stored]
    if missed:  # the others are stored; the ids asked for and not stored are an error of this command
        asked = len(set(keys))
        which = ", ".join(missed[:5]) + (" ..." if len(missed) > 5 else "")
        others = f" ({len(missed)} of the {asked} asked for; the others are stored)" if asked > 1 else ""
        raise FetchError(f"not stored: {which}{others}; the reason is above and in `monitor status`")
    if exit_code and (report.changed or report.membership):
        ctx.exit(EXIT_CHANGES)


class FetchError(MonitorError):
    """Some of the trials asked for by id could not be stored (each one's reason is a warning and in status)."""


@cli.command()
@click.argument("nct_ids", nargs=-1, required=True, metavar="NCT_ID...")
@click.pass_context
def backfill(ctx: click.Context, nct_ids: tuple[str, ...]) -> None:
    """Store a trial's past versions from the registry's version history.

    Versions older than the earliest stored one are put before it, in date
    order, so `monitor history` and `monitor diff --from/--to` reach back to the
    trial's registration.
    """
    from monitor.sources.registry import check_key, source_of

    keys = [check_key(n) for n in nct_ids]
    with ProgressBar("backfilling") as bar:
        lives: dict = {}  # one per registry, so its politeness spans every key
        for key in keys:
            name = source_of(key).name
            live = lives.get(name) or lives.setdefault(name, live_source(ctx, progress=bar, source=name))
            added = live.backfill(key)
            click.echo(f"{key}: {added} past version{'s' if added != 1 else ''} added")


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
    from monitor.live import CycleReport
    from monitor.sources.ctgov import parse_query
    from monitor.sources.registry import by_source, check_key

    if whole:
        if nct_ids or queries:
            raise click.UsageError("--all watches every trial: name no trials or searches with it")
        return _watch_all(ctx, page_size, fmt)
    if not nct_ids and not queries:
        raise click.UsageError("name trials (NCT ids), --query searches or --all to watch")
    keys = by_source(check_key(n) for n in nct_ids)  # each trial from its own registry
    for query in queries:
        parse_query(query)
    report = CycleReport()
    with ProgressBar("watching") as bar:
        lives = {source: live_source(ctx, progress=bar, source=source) for source in keys}
        for source, of_source in keys.items():  # every one checked before any is added
            _check_registered(lives[source], of_source)
        for source, of_source in keys.items():
            live = lives[source]
            for key in of_source:
                if not live.store.watches.add_watch("trial", key, utc_now()):
                    click.echo(f"{key}: already watched")
                if live.store.versions.latest_head(key) is None and not no_backfill and live.source.keeps_history:
                    try:
                        report.backfilled += live.backfill(key)
                    except MonitorError as exc:
                        report.problems.append(exc.message)
            live.fetch(of_source, report)
        if queries:  # saved searches are ClinicalTrials.gov's
            live = lives.get("ctgov") or live_source(ctx, progress=bar)
        for query in queries:
            if not live.store.watches.add_watch("query", query, utc_now()):
                click.echo(f"{query}: already watched")
                continue
            live.refresh_query(query)
            members = live.store.watches.members(query) or {}
            click.echo(f"{query}: {plural(len(members), 'trial')}, watched from now on")
            live.fetch(sorted(members), report)
    output("results", fmt, report.results, config=settings(ctx))
    warn(report.problems)


def _watch_all(ctx: click.Context, page_size: int, fmt: str) -> None:
    """The first load of the whole registry; SIGTERM stops it between two trials, resumably."""
    import signal

    from monitor.errors import Stopped
    from monitor.live import CycleReport
    from monitor.live_registry import first_load

    stop = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        with ProgressBar("loading the registry") as bar:
            live = live_source(ctx, progress=bar)
            live.should_stop = live.client.should_stop = lambda: bool(stop)
            try:
                report = first_load(live, CycleReport(), page_size)
            except Stopped as exc:
                raise IncompleteError(
                    f"the load stopped part-way ({exc}); what was stored stays: run `monitor watch add --all` "
                    "again to resume"
                ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    output("results", fmt, report.results, config=settings(ctx))
    click.echo(f"the whole registry: {plural(report.probed, 'trial')} read, watched from now on")
    warn(report.problems)


def _check_registered(live, keys: list[str]) -> None:
    """Every trial to watch is on its registry (one probe request), or nothing is added."""
    from monitor.errors import NotFoundError

    if not keys:
        return
    known = live.source.known(keys)
    missing = [key for key in keys if key not in known]
    if missing:
        also = f" (nor {', '.join(missing[1:])})" if len(missing) > 1 else ""
        ctgov = live.source.name == "ctgov"
        check = f" (check the id at https://clinicaltrials.gov/study/{missing[0]})" if ctgov else ""
        raise NotFoundError(f"{missing[0]} is not on {live.source.title}{also}; nothing was added{check}")


@watch.command("remove")
@click.argument("nct_ids", nargs=-1, metavar="NCT_ID...")
@click.option("--query", "queries", multiple=True, metavar="QUERY", help="A saved search to stop following.")
@click.pass_context
def watch_remove(ctx: click.Context, nct_ids: tuple[str, ...], queries: tuple[str, ...]) -> None:
    """Stop watching trials or saved searches; their stored history stays."""
    from monitor.errors import NotFoundError
    from monitor.sources.registry import check_key

    if not nct_ids and not queries:
        raise click.UsageError("name trials (NCT ids) or --query searches to stop watching")
    store = open_store(ctx, create=False)
    targets = [("trial", check_key(n)) for n in nct_ids] + [("query", q) for q in queries]
    missing = [target for kind, target in targets if not store.watches.remove_watch(kind, target)]
    for _, target in targets:
        if target not in missing:
            click.echo(f"{target}: no longer watched")
    if missing:
        raise NotFoundError(f"{missing[0]} was not watched (see `monitor watch list`)")
