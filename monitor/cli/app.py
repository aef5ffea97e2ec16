"""The ``monitor`` command: click commands over the library; the only place
that prints or exits.

Exit codes: 0 success (with or without changes); 1 changes found when
``--exit-code`` is given; 2 bad usage or bad input, with one ``error: ...``
line on stderr; 3 an unexpected internal error (a bug); 130 interrupted;
143 stopped by SIGTERM (a long ``fetch`` or ``watch add --all``: between two trials,
what was stored stays).
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from monitor import __version__
from monitor.errors import IncompleteError, MonitorError, Stopped  # noqa: F401 (IncompleteError: named here before)
from monitor.heap import tune_heap
from monitor.masking import guard
from monitor.materiality import Materiality
from monitor.model import Category

EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process SIGTERM ended


class Terminated(MonitorError):
    """SIGTERM stopped a command between two trials; what was stored stays."""

    exit_code = EXIT_TERMINATED


@contextmanager
def stoppable(what: str) -> Iterator[Callable[[], bool]]:
    """SIGTERM asks the command to stop between two trials: yields its ``should_stop``; once
    it was asked, the command ends with :class:`Terminated` (exit 143), whatever it raised."""
    stop: list[bool] = []
    ended = f"stopped by SIGTERM between two trials; what was stored stays: {what}"
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        yield lambda: bool(stop)
    except (MonitorError, Stopped):
        if not stop:
            raise
        raise Terminated(ended) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if stop:
        raise Terminated(ended)

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


def emit(text: str, fmt: str) -> None:
    """Text goes through rich on a terminal (wrapping, no markup); Markdown
    and JSON are printed as they are."""
    if fmt == "text" and sys.stdout.isatty():
        from rich.console import Console

        Console(highlight=False, markup=False, emoji=False).print(text)
    else:
        click.echo(text)


def output(kind: str, fmt: str, value, view=None, config=None) -> None:
    """``config`` (the settings) gives the materiality levels (the built-in ones without)."""
    # deferred: the renderer loads the field table and the normalizers (start-up of `monitor --help`)
    from monitor.render import render

    judge = Materiality(config.materiality) if config is not None else None
    emit(render(kind, fmt, value, view, judge), fmt)


def view_options(command):
    """``--category`` (repeatable), ``--min-severity`` and ``--full``, read as one ``view`` argument."""
    @click.option(
        "--category",
        "categories",
        multiple=True,
        type=click.Choice([c.value for c in Category]),
        help="Only changes of this category (repeat for several).",
    )
    @click.option(
        "--min-severity",
        type=click.Choice(["minor", "major"]),
        default=None,
        help="Only changes at least this severe.",
    )
    @click.option("--full", is_flag=True, help="List every member of every summed-up change, untruncated.")
    @functools.wraps(command)
    def wrapper(*args, categories, min_severity, full, **kwargs):
        # deferred: the aggregation loads the field table and the normalizers (start-up of `monitor --help`)
        from monitor.aggregate import View

        chosen = categories or min_severity or full
        view = View(tuple(categories), min_severity or "minor", full) if chosen else None
        return command(*args, view=view, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="registry-monitor")
@click.option(
    "--config",
    metavar="PATH",
    help="The YAML configuration [env MONITOR_CONFIG; default config/monitor.yaml when it exists].",
)
@click.option(
    "--db",
    metavar="URL_OR_PATH",
    help="Database: a SQLAlchemy URL or a SQLite file path [env MONITOR_DB; default ./monitor.db].",
)
@click.option(
    "--ctgov-url",
    metavar="URL",
    help="ClinicalTrials.gov API v2 base URL [env MONITOR_CTGOV_URL; default https://clinicaltrials.gov/api/v2].",
)
@click.option(
    "--rate",
    type=float,
    help="Requests per second to ClinicalTrials.gov, at most (0: no limit; up to 100) "
    "[env MONITOR_CTGOV_RATE; default 1].",
)
@click.option(
    "--retries",
    type=int,
    help="Retries of a failed request to ClinicalTrials.gov, with growing waits (at most 20) "
    "[env MONITOR_CTGOV_RETRIES; default 5].",
)
@click.option(
    "--snapshots",
    metavar="DIR",
    help="The raw snapshot archive [env MONITOR_SNAPSHOTS; default snapshots/].",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, **options) -> None:
    """Watch clinical-trial registry records and say precisely what changed.

    An option given here beats its environment variable, which beats the
    configuration file.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose < 2:  # alembic names every plugin it sets up (eight lines a start): debugging detail
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    for handler in logging.getLogger().handlers:  # no log line shows a secret, whichever logger wrote it
        guard(handler)
    ctx.obj = {"options": options, "verbose": verbose}


def settings(ctx: click.Context):
    """The effective settings, read once: each option given on the command line
    over the environment over the configuration file (:func:`monitor.config.load_settings`)."""
    if "settings" not in ctx.obj:
        # deferred: the settings load pydantic models and PyYAML (start-up of `monitor --help`)
        from monitor.config import load_settings

        ctx.obj["settings"] = load_settings(ctx.obj["options"]["config"], overrides(ctx))
    return ctx.obj["settings"]


def overrides(ctx: click.Context) -> dict:
    """The settings given on the command line (None: not given), by the options that
    :data:`monitor.config.OVERRIDES` names (the settings module costs start-up time)."""
    # deferred: the settings load pydantic models and PyYAML (start-up of `monitor --help`)
    from monitor.config import OVERRIDES

    options = ctx.obj["options"]
    return {setting: options[flag.lstrip("-").replace("-", "_")] for setting, (_, flag) in OVERRIDES.items()}


def open_store(ctx: click.Context, create: bool = True, read_only: bool = False):
    """The store; ``read_only`` for commands that only read (they work on a
    database file or folder the user can only read)."""
    # deferred: the store loads SQLAlchemy (start-up of `monitor --help`)
    from monitor.store import Store

    found = settings(ctx)
    store = Store.open(
        found.database, create=create, read_only=read_only, keep_raw_versions=found.storage.keep_raw_versions
    )
    ctx.call_on_close(store.close)  # every connection closed when the command ends (WAL checkpointed)
    return store


def routes(ctx: click.Context, store):
    """Which routes hear of changes this command finds (None without routes)."""
    # deferred: the watch-group cycle loads the registry client (httpx) and SQLAlchemy (start-up of `monitor --help`)
    from monitor.cycles import routes_for

    return routes_for(store, settings(ctx))


class ProgressBar:
    """A progress bar on a terminal; nothing otherwise."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)  # results stay alone on stdout
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


def warn(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


def _one_line(exc: Exception) -> str:
    """An exception's first line, printable and at most 200 characters (a SQL error goes on for lines)."""
    lines = str(exc).splitlines() or [""]
    text = "".join(c if c.isprintable() else "?" for c in lines[0])
    return text if len(text) <= 200 else text[:197] + "..."


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes one ``error: ...`` line and an exit code."""
    tune_heap()  # before any thread: one arena, and page bodies given back when freed
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
        said = _one_line(exc)
        if "Could not decode to UTF-8 column" in said:  # SQLite: bytes that are not text where text is kept
            click.echo(f"error: the database is damaged ({said}): restore it from a backup", err=True)
            return EXIT_USAGE
        click.echo(
            f"error: unexpected {exc.__class__.__name__}: {said} (this is a bug; run with -vv for details)", err=True
        )
        return EXIT_INTERNAL
    return code if isinstance(code, int) else 0
