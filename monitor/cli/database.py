"""The database commands: db upgrade, db prune."""

from __future__ import annotations

import click

from monitor.cli.app import settings


@click.group("db")
def db_group() -> None:
    """The database: schema migrations, raw-payload retention."""


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
    from monitor.cli.app import open_store
    from monitor.errors import UsageError

    keep = keep or settings(ctx).storage.keep_raw_versions
    if not keep:
        raise UsageError(
            "storage.keep_raw_versions is 0 (every raw payload is kept): set it in the configuration or give --keep N"
        )
    dropped = open_store(ctx, create=False).versions.drop_old_raw_payloads(keep)
    click.echo(
        f"dropped the raw payloads of {dropped} older version(s), keeping the newest {keep} per trial; "
        "every record and change is kept"
    )


@db_group.command("export")
@click.option("--to", "folder", metavar="DIR", help="The archive folder [default: the `snapshots` setting].")
@click.pass_context
def db_export(ctx: click.Context, folder: str | None) -> None:
    """Write every stored raw payload to the snapshot archive (`monitor load DIR` reads it back)."""
    from monitor.archive import ArchiveError, SnapshotArchive
    from monitor.cli.app import open_store
    from monitor.errors import UsageError
    from monitor.store.export import raw_payloads

    if folder is not None and not folder.strip():
        raise UsageError("--to: give a folder (or leave --to out for the `snapshots` setting)")
    archive = SnapshotArchive(folder or settings(ctx).snapshots)
    written = total = 0
    for payload in raw_payloads(open_store(ctx, create=False).engine):
        try:
            path = archive.put(payload.key, payload.registry_date, payload.raw, payload.raw_hash, verify=True)
            written += path is not None
        except ArchiveError as exc:
            cause = exc.message.split("; nothing was stored")[0]
            raise ArchiveError(
                f"{cause}; {written} payload(s) written before it (make it writable, or --to DIR)"
            ) from exc
        total += 1
    click.echo(f"{total} raw payload(s) in {archive.root}, {written} written now")
