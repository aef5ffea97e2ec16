"""One exception tree for everything a user can get wrong.

Every error carries the exit code the CLI uses and a message that names the
trial, file or setting at fault and, where it helps, what to do next::

    MonitorError (exit 2)      base class; never raised directly
    +-- UsageError             bad arguments: a malformed NCT id, a bad version
    +-- ConfigError            a configuration file or setting is wrong
    +-- SourceError            an input could not be read or fetched
    |   +-- ParseError         an input was read but is not a trial record we know
    +-- NotFoundError          an unknown trial or version
    +-- StoreError             the database cannot be opened or written
    +-- IncompleteError        a polling cycle or registry load stopped part-way

Apart from the tree, :class:`Stopped` (a ``BaseException``, so that no
``except Exception`` at a per-trial boundary swallows it) says the daemon is
shutting down: waits and requests end, and the cycle stops between two trials.

The library raises these; only :mod:`monitor.cli` turns them into
``error: ...`` lines and exit codes.
"""

from __future__ import annotations

from monitor.masking import mask_secrets  # a URL in a message (a registry's, a route's) keeps no secret


class MonitorError(Exception):
    exit_code = 2

    def __init__(self, message: str) -> None:
        message = mask_secrets(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MonitorError):
    pass


class ConfigError(MonitorError):
    pass


class SourceError(MonitorError):
    pass


class ParseError(SourceError):
    pass


class NotFoundError(MonitorError):
    pass


class StoreError(MonitorError):
    pass


class WriteConflict(StoreError):
    """Another process stored a different version of the trial at the same time: that trial's
    problem alone (a database refusing every write is a plain :class:`StoreError`)."""


class IncompleteError(MonitorError):
    """A polling cycle stopped part-way (the registry could not be reached); what was stored stays."""


class Stopped(BaseException):
    """The daemon is shutting down: a wait or request was interrupted, or a cycle
    stopped between two trials; what was not reached is done next time."""
