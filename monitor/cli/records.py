"""Commands over stored records and snapshot files: load, diff, history, show."""

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
    routes,
    settings,
    view_options,
)
from monitor.clock import utc_now
from monitor.errors import SourceError


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--skip-bad", is_flag=True, help="Store the good files, list the bad ones (exit 2 when any was bad).")
@format_option
@exit_code_option
@click.pass_context
def load(ctx: click.Context, paths: tuple[str, ...], skip_bad: bool, fmt: str, exit_code: bool) -> None:
    """Load snapshot files or folders into the store.

    Each record is stored as a new version when it differs from the latest
    stored one; the report says per trial: new, changed (with what changed),
    or unchanged.  Every file is read and checked before anything is stored:
    one bad file and nothing is stored, unless --skip-bad is given.
    """
    # deferred: these load the normalizers, the field table and more (start-up of `monitor --help`)
    from monitor.loading import survey
    from monitor.results import Results

    problems: list[str] | None = [] if skip_bad else None
    limits = settings(ctx).limits
    # pass 1, one file at a time: a bad file fails before the database is created or touched
    found = survey(paths, problems, limits)
    results = Results()
    if found.count:
        store = open_store(ctx)
        with ProgressBar("loading") as bar:  # on a terminal only; pass 2 stores what pass 1 spooled
            results = found.store(store, utc_now, routes(ctx, store), problems, bar)
        output("results", fmt, results, config=settings(ctx))
    if problems:
        for problem in problems:
            click.echo(f"skipped: {problem}", err=True)
        raise SourceError(f"{len(problems)} bad input(s) not stored (listed above); the others were stored")
    failed = [r.key for r in results if r.status == "failed"]
    if failed:  # each trial's problem is in the report above and in `monitor status`
        which = ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
        raise SourceError(f"not stored: {which}; the reason is above and in `monitor status`; the others were stored")
    if exit_code and results.count_of("changed"):  # listed or not
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="NCT_ID | OLD_FILE NEW_FILE")
@click.option("--from", "from_ref", metavar="V", help="Older version: a number or a date (YYYY-MM-DD).")
@click.option("--to", "to_ref", metavar="V", help="Newer version: a number or a date (YYYY-MM-DD).")
@click.option("--live", is_flag=True, help="Compare the registry's current record with the latest stored one.")
@view_options
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
    view=None,
) -> None:
    """Show what changed.

    \b
    monitor diff NCT_ID            latest stored version against the one before
    monitor diff NCT_ID --from 1   version 1 against the latest (or --to)
    monitor diff OLD_FILE NEW_FILE two snapshot files; nothing is stored
    monitor diff FILE              a snapshot file against the latest stored version
    monitor diff NCT_ID --live     the registry's current record against the latest stored
    """
    # deferred: these load the normalizers, the field table and more (start-up of `monitor --help`)
    from monitor import pipeline
    from monitor.render import nothing_to_compare
    from monitor.sources.files import is_file_argument
    from monitor.sources.registry import check_key

    if len(targets) > 2:
        raise click.UsageError("diff takes one trial id, one file, or two files")
    if live:
        if len(targets) != 1 or from_ref or to_ref:
            raise click.UsageError("--live takes one trial id and no --from/--to")
        # deferred: monitor.watching loads the registry client, httpx (start-up of `monitor diff A B`)
        from monitor.watching import compare_live

        key = check_key(targets[0])  # a bad id before the database is opened
        comparison = compare_live(open_store(ctx, create=False), settings(ctx), key)
    elif len(targets) == 2:
        if from_ref or to_ref:
            raise click.UsageError("--from and --to apply to a stored trial, not to two files")
        comparison = pipeline.compare_files(*targets, limits=settings(ctx).limits)
    elif is_file_argument(targets[0]):
        store = open_store(ctx, create=False, read_only=True)
        comparison = pipeline.compare_file_to_store(store, targets[0], settings(ctx).limits)
    else:
        key = check_key(targets[0])
        store = open_store(ctx, create=False, read_only=True)
        history = store.versions.history(key) if not (from_ref or to_ref) else []
        if history and not any(v.changes for v in history[1:]):
            click.echo(nothing_to_compare(key, history, fmt))
            return
        comparison = pipeline.compare_versions(store, key, from_ref, to_ref)
    output("comparison", fmt, comparison, view, settings(ctx))
    if exit_code and comparison.changes:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("nct_id", metavar="NCT_ID")
@view_options
@format_option
@click.pass_context
def history(ctx: click.Context, nct_id: str, fmt: str, view=None) -> None:
    """Every stored version of a trial with its date, source and what changed."""
    # deferred: the sources load the normalizers (start-up of `monitor --help`)
    from monitor.sources.registry import check_key

    key = check_key(nct_id)
    output("history", fmt, open_store(ctx, create=False, read_only=True).versions.history(key), view, settings(ctx))


@cli.command()
@click.argument("nct_id", metavar="NCT_ID")
@click.option("--version", "version_ref", metavar="V", help="A version number or date; default the latest.")
@format_option
@click.pass_context
def show(ctx: click.Context, nct_id: str, version_ref: str | None, fmt: str) -> None:
    """The normalized record of a trial (a stored trial, or a snapshot file)."""
    # deferred: the snapshot reader loads the normalizers (start-up of `monitor --help`)
    from monitor.sources.files import is_file_argument

    if is_file_argument(nct_id):
        if version_ref:
            raise click.UsageError("--version applies to a stored trial, not to a file")
        # deferred: the pipeline loads the normalizers and the field table (start-up of `monitor --help`)
        from monitor.pipeline import read_single

        output("record", fmt, read_single(nct_id, settings(ctx).limits).record)
        return
    # deferred: these load the normalizers, the field table and more (start-up of `monitor --help`)
    from monitor.pipeline import pick_version
    from monitor.sources.registry import check_key

    key = check_key(nct_id)
    history = open_store(ctx, create=False, read_only=True).versions.history(key)
    version = pick_version(history, version_ref) if version_ref else history[-1]
    output("record", fmt, version.record)
