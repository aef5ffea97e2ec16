"""The ``monitor`` command: click commands over the library; the only place
that prints or exits.

Exit codes: 0 success (with or without changes); 1 changes found when
``--exit-code`` is given; 2 bad usage or bad input, with one ``error: ...``
line on stderr; 3 an unexpected internal error (a bug); 130 interrupted.
"""

from __future__ import annotations

from monitor.cli import checks, live, portfolio, records, web  # noqa: F401 (registers the commands)
from monitor.cli.app import EXIT_CHANGES, EXIT_INTERNAL, EXIT_USAGE, cli, main
from monitor.cli.database import db_group
from monitor.cli.notifications import deliveries, notify
from monitor.cli.service import config_group, run, status

cli.add_command(run)
cli.add_command(status)
cli.add_command(config_group)
cli.add_command(notify)
cli.add_command(deliveries)
cli.add_command(db_group)

__all__ = ["EXIT_CHANGES", "EXIT_INTERNAL", "EXIT_USAGE", "cli", "main"]
