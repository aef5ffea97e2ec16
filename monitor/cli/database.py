"""The database commands: db upgrade."""

from __future__ import annotations

import click

from monitor.cli.app import settings


@click.group("db")
def db_group() -> None:
    """The database: schema migrations."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the database schema to this version of the monitor (back it up first)."""
    from monitor.store.database import open_engine
    from monitor.store.migrate import upgrade

    engine = open_engine(settings(ctx).database, create=None)
    before, after = upgrade(engine)
    engine.dispose()
    click.echo(f"schema revision {before or 'none'} -> {after}" if before != after else f"already at revision {after}")
