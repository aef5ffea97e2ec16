"""`monitor serve`: the read-only web page, feeds and JSON API (monitor.web)."""

from __future__ import annotations

import click

from monitor.cli.app import cli, open_store, settings
from monitor.clock import utc_now


@cli.command()
@click.option("--host", metavar="ADDRESS", help="Address to listen on [config web.host; default 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [config web.port; default 8080].")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the portfolio as a read-only web page, Atom feeds and a JSON API.

    Pages: / (recent changes across trials, filtered like `monitor changes`;
    the watch list), /trials/ID (versions, key dates, comparisons).  Feeds:
    /feeds/changes.atom (the same filters as query parameters),
    /feeds/watch/GROUP.atom.  JSON: /api/changes, /api/trials/ID,
    /api/trials/ID/diff?from=&to=.  Listening anywhere but on loopback needs
    web.token or web.username/web.password in the configuration.
    """
    import uvicorn

    # deferred: the web app loads Starlette, Jinja2 and the store (start-up of `monitor --help`)
    from monitor.web.app import create_app
    from monitor.web.auth import require_credentials

    config = settings(ctx)
    host = host or config.web.host
    port = port or config.web.port
    require_credentials(config.web, host)
    app = create_app(open_store(ctx, create=False, read_only=True), config, utc_now)
    click.echo(f"serving http://{host}:{port}/ (read-only; Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
