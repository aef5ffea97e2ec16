"""The service's commands: run, status, config check."""

from __future__ import annotations

import logging
from functools import partial

import click

from monitor.cli.app import emit, format_option, open_store, output, overrides, settings
from monitor.errors import ConfigError, MonitorError
from monitor.masking import mask_secrets


@click.command()
@click.option("--once", is_flag=True, help="Run every watch group's cycle once, print what it did, and exit.")
@format_option
@click.pass_context
def run(ctx: click.Context, once: bool, fmt: str) -> None:
    """Run the monitor: every watch group's cycle on its schedule.

    Reads the configuration (--config, MONITOR_CONFIG, or config/monitor.yaml).
    SIGTERM or SIGINT finish the cycles in flight and exit 0; SIGHUP reloads
    the configuration.  One process per database: a second `monitor run` on the
    same database is refused.
    """
    # deferred: the daemon loads APScheduler, httpx and SQLAlchemy (start-up of `monitor --help`)
    from monitor.daemon import Daemon, run_once

    if ctx.obj["verbose"] == 0 and not once:
        logging.getLogger("monitor").setLevel(logging.INFO)  # the daemon logs one line per cycle
    config = settings(ctx)
    config.require_files()
    store = open_store(ctx)
    if once:
        outcomes = run_once(store, config)
        if fmt == "json":
            # deferred: the renderer and the status module load the normalizers (start-up of `monitor --help`)
            from monitor.render import to_json
            from monitor.status import outcome_dicts

            emit(to_json(outcome_dicts(outcomes)), fmt)
        else:
            for outcome in outcomes:
                click.echo(f"{outcome.group}: {outcome.line()}")
                if outcome.results:
                    output("results", fmt, outcome.results, config=config)
                for problem in outcome.problems:
                    click.echo(f"warning: {problem}", err=True)
            if not outcomes:
                click.echo("nothing to do: the configuration has no watch groups")
        return
    # deferred: the settings load pydantic models and PyYAML (start-up of `monitor --help`)
    from monitor.config import load_settings

    reload = partial(load_settings, options=overrides(ctx))  # a reload keeps the command line's settings
    daemon = Daemon(store, config, ctx.obj["options"]["config"], reload=reload)
    daemon.install_signals()
    code = daemon.serve()
    if daemon.stuck:  # a thread outlived the shutdown timeout: SIGTERM still ends the process, on time
        import os
        import sys

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@click.command()
@click.option(
    "--health",
    is_flag=True,
    help="Exit 1 unless a `monitor run` is alive on this database (for container health checks).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
@click.pass_context
def status(ctx: click.Context, health: bool, fmt: str) -> None:
    """What the monitor is doing: the daemon, each watch group's last and next
    run, trials watched, changes in the last 24 hours, deliveries, and the last
    error per source."""
    # deferred: the status module loads the daemon and the store (start-up of `monitor --help`)
    from monitor.status import status as service_status
    from monitor.status import status_text

    report = service_status(open_store(ctx, create=False, read_only=True), settings(ctx))
    if fmt == "json":
        # deferred: the renderer loads the normalizers (start-up of `monitor --help`)
        from monitor.render import to_json

        report["database"] = mask_secrets(report["database"])
        click.echo(to_json(report))
    else:
        click.echo(status_text(report))
    alive, holder = report["daemon"]["running"], report["daemon"]
    if health and not alive:
        raise NotRunning(
            "no `monitor run` is alive on this database"
            + (f" (last heartbeat {holder['beat'][:19]})" if "beat" in holder else "")
        )


class NotRunning(MonitorError):
    exit_code = 1


@click.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("check")
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True, help="Output format."
)
@click.pass_context
def config_check(ctx: click.Context, fmt: str) -> None:
    """Validate the configuration and print the effective settings, secrets masked.

    Every mistake is reported with its file, line and YAML path.
    """
    # deferred: the settings load pydantic models and PyYAML (start-up of `monitor --help`)
    from monitor.config import effective

    try:
        loaded = settings(ctx)
        loaded.require_files()
        effective_settings = effective(loaded)
    except ConfigError as exc:
        for problem in getattr(exc, "problems", [exc.message]):
            click.echo(f"error: {problem}", err=True)
        ctx.exit(exc.exit_code)
    if fmt == "json":
        # deferred: the renderer loads the field table and the normalizers (start-up of `monitor --help`)
        from monitor.render import to_json

        click.echo(to_json(effective_settings))
    else:
        import yaml

        click.echo(yaml.safe_dump(effective_settings, sort_keys=False, allow_unicode=True).rstrip())
