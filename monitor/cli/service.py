"""The service's commands: run, status, config check."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

import click

from monitor.cli.app import emit, format_option, open_store, output, overrides, settings
from monitor.clock import utc_now
from monitor.errors import MonitorError


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
    from monitor.daemon import Daemon, run_once

    if ctx.obj["verbose"] == 0 and not once:
        logging.getLogger("monitor").setLevel(logging.INFO)  # the daemon logs one line per cycle
    config = settings(ctx)
    config.require_files()
    store = open_store(ctx)
    if once:
        outcomes = run_once(store, config)
        if fmt == "json":
            from monitor.render import to_json

            emit(
                to_json(
                    [
                        {
                            "group": o.group,
                            "line": o.line(),
                            "complete": o.complete,
                            "problems": o.problems,
                            "results": [
                                {
                                    "trial": r.key,
                                    "status": r.status,
                                    "version": r.version,
                                    "changes": [c.to_dict() for c in r.changes],
                                }
                                for r in o.results
                            ],
                            "membership": [{"trial": k, **e.to_dict()} for k, e in o.membership],
                        }
                        for o in outcomes
                    ]
                ),
                fmt,
            )
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
    from monitor.daemon import LOCK, STALE_AFTER

    config = settings(ctx)
    store = open_store(ctx, create=False, read_only=True)
    now = utc_now()
    holder = store.service.lock_holder(LOCK)
    alive = bool(holder) and now - datetime.fromisoformat(holder["beat"]) <= STALE_AFTER
    groups = []
    state = store.service.state_with_prefix("group.")
    for group in config.watches:
        groups.append(
            {
                "group": group.name,
                "schedule": group.schedule.text,
                "last_run": state.get(f"group.{group.name}.last_run") or None,
                "next_run": state.get(f"group.{group.name}.next_run") or None,
                "last_result": state.get(f"group.{group.name}.last_result") or None,
                "last_error": state.get(f"group.{group.name}.last_error") or None,
            }
        )
    from monitor.expected import RULES

    total, major = store.versions.changes_since(now - timedelta(hours=24))
    flagged = store.expected.expected_counts()
    watched = store.watches.watched_trials()
    report = {
        "database": config.database,
        "daemon": {"running": alive, **(holder or {})},
        "groups": groups,
        "trials_stored": store.versions.counts()["trials"],
        "trials_watched": len(watched),
        "changes_24h": {"total": total, "major": major},
        "expected": {
            "trials_evaluated": store.expected.expected_seen_count(),
            "flagged": {rule: flagged.get(rule, 0) for rule in RULES},
        },
        "deliveries": {k: v for k, v in store.deliveries.delivery_counts().items() if k != "sent"},
        "trial_errors": [
            {"trial": k, "error": e, "at": a.isoformat() if a else None}
            for k, e, a in store.watches.trial_errors()[:10]
        ],
    }
    if fmt == "json":
        from monitor.config import mask_secrets
        from monitor.render import to_json

        report["database"] = mask_secrets(report["database"])
        click.echo(to_json(report))
    else:
        click.echo(_status_text(report))
    if health and not alive:
        raise NotRunning(
            "no `monitor run` is alive on this database"
            + (f" (last heartbeat {holder['beat'][:19]})" if holder else "")
        )


def _expected_line(expected: dict) -> str:
    """The trials each expected-event rule flags, as stored by the last evaluation."""
    if not expected["trials_evaluated"]:
        return "expected        not evaluated yet (the service evaluates the rules after each cycle)"
    counts = ", ".join(f"{rule} {n}" for rule, n in expected["flagged"].items())
    return f"expected        {counts} (of {expected['trials_evaluated']} trials evaluated)"


class NotRunning(MonitorError):
    exit_code = 1


def _status_text(report: dict) -> str:
    from monitor.config import mask_secrets

    daemon = report["daemon"]
    lines = [f"database        {mask_secrets(report['database'])}"]
    if daemon["running"]:
        lines.append(
            f"daemon          running ({daemon['owner']}, since {daemon['since'][:19]}, "
            f"heartbeat {daemon['beat'][:19]})"
        )
    else:
        lines.append(
            "daemon          not running" + (f" (last heartbeat {daemon['beat'][:19]})" if "beat" in daemon else "")
        )
    lines.append(f"trials          {report['trials_watched']} watched, {report['trials_stored']} stored")
    lines.append(f"changes (24 h)  {report['changes_24h']['total']} ({report['changes_24h']['major']} major)")
    lines.append(_expected_line(report["expected"]))
    lines.append(f"deliveries      {report['deliveries']['pending']} pending, {report['deliveries']['failed']} failed")
    for g in report["groups"]:
        lines.append(f"group {g['group']} ({g['schedule']})")
        lines.append(
            f"  last run      {(g['last_run'] or 'never')[:19]}" + (f"  {g['last_result']}" if g["last_result"] else "")
        )
        lines.append(f"  next run      {g['next_run'][:19] if g['next_run'] else 'when the daemon runs'}")
        if g["last_error"]:
            lines.append(f"  last error    {g['last_error']}")
    for e in report["trial_errors"]:
        lines.append(f"error           {e['trial']}: {e['error']} ({(e['at'] or '')[:19]})")
    return "\n".join(lines)


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
    from monitor.config import effective
    from monitor.errors import ConfigError

    try:
        loaded = settings(ctx)
        loaded.require_files()
        effective_settings = effective(loaded)
    except ConfigError as exc:
        for problem in getattr(exc, "problems", [exc.message]):
            click.echo(f"error: {problem}", err=True)
        ctx.exit(exc.exit_code)
    if fmt == "json":
        from monitor.render import to_json

        click.echo(to_json(effective_settings))
    else:
        import yaml

        click.echo(yaml.safe_dump(effective_settings, sort_keys=False, allow_unicode=True).rstrip())
