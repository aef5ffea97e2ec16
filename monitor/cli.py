"""The ``monitor`` command: click commands over the library; the only place
that prints or exits.

Exit codes: 0 success (with or without changes); 1 changes found when
``--exit-code`` is given; 2 bad usage or bad input, with one ``error: ...``
line on stderr; 3 an unexpected internal error (a bug); 130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from monitor import __version__
from monitor.errors import MonitorError

EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
exit_code_option = click.option(
    "--exit-code",
    is_flag=True,
    help="Exit with status 1 when there are changes (like `git diff --exit-code`).",
)


def _open_store(ctx: click.Context, create: bool = True):
    from monitor.store import Store

    return Store.open(ctx.obj["db"], create=create)


def _emit(text: str, fmt: str) -> None:
    """Text goes through rich on a terminal (wrapping, no markup); Markdown
    and JSON are printed as they are."""
    if fmt == "text" and sys.stdout.isatty():
        from rich.console import Console

        Console(highlight=False, markup=False, emoji=False).print(text)
    else:
        click.echo(text)


def _render(kind: str, fmt: str, value) -> None:
    from monitor.render import render

    _emit(render(kind, fmt, value), fmt)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="registry-monitor")
@click.option(
    "--db",
    envvar="MONITOR_DB",
    metavar="URL_OR_PATH",
    help="Database: a SQLAlchemy URL or a SQLite file path [env MONITOR_DB; default ./monitor.db].",
)
@click.option(
    "--ctgov-url",
    envvar="MONITOR_CTGOV_URL",
    metavar="URL",
    help="ClinicalTrials.gov API v2 base URL [env MONITOR_CTGOV_URL; default https://clinicaltrials.gov/api/v2].",
)
@click.option(
    "--rate",
    envvar="MONITOR_CTGOV_RATE",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Requests per second to ClinicalTrials.gov, at most (0: no limit) [env MONITOR_CTGOV_RATE].",
)
@click.option(
    "--retries",
    envvar="MONITOR_CTGOV_RETRIES",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Retries of a failed request to ClinicalTrials.gov, with growing waits [env MONITOR_CTGOV_RETRIES].",
)
@click.option(
    "--snapshots",
    envvar="MONITOR_SNAPSHOTS",
    metavar="DIR",
    default="snapshots",
    show_default=True,
    help="The raw snapshot archive [env MONITOR_SNAPSHOTS].",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
@click.pass_context
def cli(
    ctx: click.Context, db: str | None, ctgov_url: str | None, rate: float, retries: int, snapshots: str, verbose: int
) -> None:
    """Watch clinical-trial registry records and say precisely what changed."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = {"db": db, "ctgov_url": ctgov_url, "rate": rate, "retries": retries, "snapshots": snapshots}


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@format_option
@exit_code_option
@click.pass_context
def load(ctx: click.Context, paths: tuple[str, ...], fmt: str, exit_code: bool) -> None:
    """Load snapshot files or folders into the store.

    Each record is stored as a new version when it differs from the latest
    stored one; the report says per trial: new, changed (with what changed),
    or unchanged.  Every file is read and checked before anything is stored.
    """
    from monitor.pipeline import load as load_payloads
    from monitor.pipeline import read_payloads

    payloads = read_payloads(paths)  # a bad file fails before the database is created or touched
    results = load_payloads(_open_store(ctx), payloads)
    _render("results", fmt, results)
    if exit_code and any(r.status == "changed" for r in results):
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="NCT_ID | OLD_FILE NEW_FILE")
@click.option("--from", "from_ref", metavar="V", help="Older version: a number or a date (YYYY-MM-DD).")
@click.option("--to", "to_ref", metavar="V", help="Newer version: a number or a date (YYYY-MM-DD).")
@click.option("--live", is_flag=True, help="Compare the registry's current record with the latest stored one.")
@format_option
@exit_code_option
@click.pass_context
def diff(
    ctx: click.Context,
    targets: tuple[str, ...],
    from_ref: str | None,
    to_ref: str | None,
    live: bool,
    fmt: str,
    exit_code: bool,
) -> None:
    """Show what changed.

    \b
    monitor diff NCT_ID            latest stored version against the one before
    monitor diff NCT_ID --from 1   version 1 against the latest (or --to)
    monitor diff OLD_FILE NEW_FILE two snapshot files; nothing is stored
    monitor diff FILE              a snapshot file against the latest stored version
    monitor diff NCT_ID --live     the registry's current record against the latest stored
    """
    from monitor import pipeline

    if len(targets) > 2:
        raise click.UsageError("diff takes one trial id, one file, or two files")
    if live:
        if len(targets) != 1 or from_ref or to_ref:
            raise click.UsageError("--live takes one trial id and no --from/--to")
        from monitor.normalize.identity import check_key

        key = check_key(targets[0])
        live_source = _live(ctx, create=False)
        comparison = pipeline.compare_to_store(live_source.store, live_source.current(key))
    elif len(targets) == 2:
        if from_ref or to_ref:
            raise click.UsageError("--from and --to apply to a stored trial, not to two files")
        comparison = pipeline.compare_files(*targets)
    elif Path(targets[0]).is_file():
        comparison = pipeline.compare_file_to_store(_open_store(ctx, create=False), targets[0])
    else:
        from monitor.normalize.identity import check_key

        key = check_key(targets[0])
        comparison = pipeline.compare_versions(_open_store(ctx, create=False), key, from_ref, to_ref)
    _render("comparison", fmt, comparison)
    if exit_code and comparison.changes:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("nct_id", metavar="NCT_ID")
@format_option
@click.pass_context
def history(ctx: click.Context, nct_id: str, fmt: str) -> None:
    """Every stored version of a trial with its date, source and what changed."""
    from monitor.normalize.identity import check_key

    key = check_key(nct_id)
    _render("history", fmt, _open_store(ctx, create=False).versions(key))


@cli.command()
@click.argument("nct_id", metavar="NCT_ID")
@click.option("--version", "version_ref", metavar="V", help="A version number or date; default the latest.")
@format_option
@click.pass_context
def show(ctx: click.Context, nct_id: str, version_ref: str | None, fmt: str) -> None:
    """The normalized record of a trial (a stored trial, or a snapshot file)."""
    if Path(nct_id).is_file():
        if version_ref:
            raise click.UsageError("--version applies to a stored trial, not to a file")
        from monitor.pipeline import read_single

        _render("record", fmt, read_single(nct_id).record)
        return
    from monitor.normalize.identity import check_key
    from monitor.pipeline import pick_version

    key = check_key(nct_id)
    history = _open_store(ctx, create=False).versions(key)
    version = pick_version(history, version_ref) if version_ref else history[-1]
    _render("record", fmt, version.record)


def _live(ctx: click.Context, create: bool = True, progress=None):
    from monitor.archive import SnapshotArchive
    from monitor.live import Live
    from monitor.sources.ctgov import CtgovClient, Politeness

    client = CtgovClient(ctx.obj["ctgov_url"], politeness=Politeness(rate=ctx.obj["rate"], retries=ctx.obj["retries"]))
    ctx.call_on_close(client.close)
    return Live(_open_store(ctx, create=create), client, SnapshotArchive(ctx.obj["snapshots"]), progress=progress)


class _Bar:
    """A progress bar on a terminal; nothing otherwise."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
        return self

    def __call__(self, what: str, n: int) -> None:
        if self.bar is not None:
            if what not in self.tasks:
                self.tasks[what] = self.bar.add_task(f"{self.description}: {what}", total=None)
            self.bar.advance(self.tasks[what], n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _warn(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


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
    from monitor.normalize.identity import check_key

    keys = [check_key(n) for n in nct_ids]
    with _Bar("fetching") as bar:
        live = _live(ctx, progress=bar)
        report = live.fetch(keys) if keys else live.cycle()
    if report.skipped:
        click.echo("ClinicalTrials.gov has not changed since the last cycle: nothing to fetch")
    _render("results", fmt, report.results)
    for key, event in report.membership:
        click.echo(f"{key}: {event.summary}")
    _warn(report.problems)
    if not report.complete:
        raise IncompleteError("the cycle could not finish; what was fetched is stored, the rest is retried next time")
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
    from monitor.normalize.identity import check_key

    keys = [check_key(n) for n in nct_ids]
    with _Bar("backfilling") as bar:
        live = _live(ctx, progress=bar)
        for key in keys:
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
@format_option
@click.pass_context
def watch_add(
    ctx: click.Context, nct_ids: tuple[str, ...], queries: tuple[str, ...], no_backfill: bool, fmt: str
) -> None:
    """Start watching trials or saved searches.

    A trial is fetched now, with its past versions from the registry's history
    (unless --no-backfill).  A saved search is run now to set its baseline; its
    trials become watched (their past versions are fetched over the next
    cycles), and trials entering or leaving it later are events.
    """
    from monitor.live import CycleReport
    from monitor.normalize.identity import check_key
    from monitor.pipeline import utc_now
    from monitor.sources.ctgov import parse_query

    if not nct_ids and not queries:
        raise click.UsageError("name trials (NCT ids) or --query searches to watch")
    keys = [check_key(n) for n in nct_ids]
    for query in queries:
        parse_query(query)
    report = CycleReport()
    with _Bar("watching") as bar:
        live = _live(ctx, progress=bar)
        for key in keys:
            if not live.store.add_watch("trial", key, utc_now()):
                click.echo(f"{key}: already watched")
            if live.store.latest_head(key) is None and not no_backfill:
                try:
                    report.backfilled += live.backfill(key)
                except MonitorError as exc:
                    report.problems.append(exc.message)
        if keys:
            live.fetch(keys, report)
        for query in queries:
            if not live.store.add_watch("query", query, utc_now()):
                click.echo(f"{query}: already watched")
                continue
            live.refresh_query(query)
            members = live.store.members(query) or {}
            click.echo(f"{query}: {len(members)} trials, watched from now on")
            live.fetch(sorted(members), report)
    _render("results", fmt, report.results)
    _warn(report.problems)


@watch.command("list")
@format_option
@click.pass_context
def watch_list(ctx: click.Context, fmt: str) -> None:
    """Every watch, with when it was added and, for a saved search, its trials."""
    rows = _open_store(ctx, create=False).watches()
    if fmt == "json":
        from monitor.render import to_json

        click.echo(
            to_json(
                [
                    {
                        "kind": w.kind,
                        "target": w.target,
                        "added_at": w.added_at.isoformat(),
                        "trials": w.members if w.kind == "query" else 1,
                    }
                    for w in rows
                ]
            )
        )
        return
    if not rows:
        click.echo("nothing is watched: add trials with `monitor watch add NCT_ID`, or searches with --query")
    for w in rows:
        extra = f"  ({w.members} trials)" if w.kind == "query" else ""
        click.echo(f"{w.kind:<6} {w.target}{extra}  since {w.added_at:%Y-%m-%d}")


@watch.command("remove")
@click.argument("nct_ids", nargs=-1, metavar="NCT_ID...")
@click.option("--query", "queries", multiple=True, metavar="QUERY", help="A saved search to stop following.")
@click.pass_context
def watch_remove(ctx: click.Context, nct_ids: tuple[str, ...], queries: tuple[str, ...]) -> None:
    """Stop watching trials or saved searches; their stored history stays."""
    from monitor.errors import NotFoundError
    from monitor.normalize.identity import check_key

    if not nct_ids and not queries:
        raise click.UsageError("name trials (NCT ids) or --query searches to stop watching")
    store = _open_store(ctx, create=False)
    targets = [("trial", check_key(n)) for n in nct_ids] + [("query", q) for q in queries]
    missing = [target for kind, target in targets if not store.remove_watch(kind, target)]
    for _, target in targets:
        if target not in missing:
            click.echo(f"{target}: no longer watched")
    if missing:
        raise NotFoundError(f"{missing[0]} was not watched (see `monitor watch list`)")


class IncompleteError(MonitorError):
    """A polling cycle stopped part-way (the registry could not be reached)."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes one ``error: ...`` line and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="monitor", standalone_mode=False)
    except MonitorError as exc:
        click.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return EXIT_USAGE
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug of ours: one line for the user, the traceback with -vv
        logging.getLogger("monitor").debug("unexpected error", exc_info=True)
        click.echo(
            f"error: unexpected {exc.__class__.__name__}: {exc} (this is a bug; run with -vv for details)", err=True
        )
        return EXIT_INTERNAL
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
