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
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
@click.pass_context
def cli(ctx: click.Context, db: str | None, verbose: int) -> None:
    """Watch clinical-trial registry records and say precisely what changed."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = {"db": db}


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
@format_option
@exit_code_option
@click.pass_context
def diff(
    ctx: click.Context, targets: tuple[str, ...], from_ref: str | None, to_ref: str | None, fmt: str, exit_code: bool
) -> None:
    """Show what changed.

    \b
    monitor diff NCT_ID            latest stored version against the one before
    monitor diff NCT_ID --from 1   version 1 against the latest (or --to)
    monitor diff OLD_FILE NEW_FILE two snapshot files; nothing is stored
    monitor diff FILE              a snapshot file against the latest stored version
    """
    from monitor import pipeline

    if len(targets) > 2:
        raise click.UsageError("diff takes one trial id, one file, or two files")
    if len(targets) == 2:
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
