"""The database commands: db upgrade, db prune."""

from __future__ import annotations

import click

from monitor.cli.app import open_store, settings


@click.group("db")
def db_group() -> None:
    """The database: schema migrations, raw-payload retention."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the database schema to this version of the monitor (back it up first)."""
    # deferred: the migrations load SQLAlchemy and Alembic (start-up of `monitor --help`)
    from monitor.maintenance import upgrade_schema

    before, after = upgrade_schema(settings(ctx).database)
    click.echo(f"schema revision {before or 'none'} -> {after}" if before != after else f"already at revision {after}")


@db_group.command("prune")
@click.option(
    "--keep",
    type=click.IntRange(1, 1_000_000),  # the range of storage.keep_raw_versions
    metavar="N",
    help="Raw payloads kept per trial [default: storage.keep_raw_versions].",
)
@click.pass_context
def db_prune(ctx: click.Context, keep: int | None) -> None:
    """Drop the raw payloads of each trial's older versions; records and changes stay forever."""
    # deferred: the maintenance module loads the store (start-up of `monitor --help`)
    from monitor.maintenance import check_keep, prune_raw

    keep = check_keep(keep or settings(ctx).storage.keep_raw_versions)
    dropped = prune_raw(open_store(ctx, create=False), keep)
    click.echo(
        f"dropped the raw payloads of {dropped} older version(s), keeping the newest {keep} per trial; "
        "every record and change is kept"
    )


@db_group.command("export")
@click.option("--to", "folder", metavar="DIR", help="The archive folder [default: the `snapshots` setting].")
@click.pass_context
def db_export(ctx: click.Context, folder: str | None) -> None:
    """Write every stored raw payload to the snapshot archive (`monitor load DIR` reads it back)."""
    # deferred: the maintenance module loads the store (start-up of `monitor --help`)
    from monitor.maintenance import check_folder, export_raw

    target = settings(ctx).snapshots if folder is None else check_folder(folder)
    total, written, root = export_raw(open_store(ctx, create=False), target)
    click.echo(f"{total} raw payload(s) in {root}, {written} written now")
