"""The raw snapshot archive: every distinct payload fetched, gzip-compressed,
named by trial and registry date, so any stored version can be re-derived from
its raw bytes.

    snapshots/NCT06821503/2026-03-10_3f2a9c1b.json.gz

The name is the registry's last-update date and the first 8 hex digits of the
payload's SHA-256; a payload already archived is not written again.  Files are
written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

from monitor.errors import StoreError

DEFAULT_ARCHIVE = "snapshots"


class ArchiveError(StoreError):
    """The archive cannot be written: no version is stored without its raw copy, so
    this stops a fetch or cycle (exit 2) rather than failing trial after trial."""


class SnapshotArchive:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str, registry_date: str | None, raw_hash: str) -> Path:
        return self.root / key / f"{registry_date or 'undated'}_{raw_hash[:8]}.json.gz"

    def put(self, key: str, registry_date: str | None, raw: str, raw_hash: str, verify: bool = False) -> Path | None:
        """Archive ``raw``; the new file's path, or None when it was archived already.
        ``verify``: a file already there is read back, and written again unless it holds ``raw``."""
        path = self.path_for(key, registry_date, raw_hash)
        try:
            if path.exists() and (not verify or _holds(path, raw.encode("utf-8"))):  # exists() raises ENAMETOOLONG
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".part-", delete=False) as tmp:
                tmp.write(gzip.compress(raw.encode("utf-8"), mtime=0))
            os.replace(tmp.name, path)
        except OSError as exc:
            raise ArchiveError(
                f"cannot write the snapshot archive at {path}: {exc.strerror or exc}; nothing was stored for {key} "
                "(make the folder writable, or point `snapshots:` in the configuration elsewhere)"
            ) from exc
        return path

    def files(self, key: str) -> list[Path]:
        return sorted((self.root / key).glob("*.json.gz"))


def _holds(path: Path, data: bytes) -> bool:
    """Whether the gzip file at ``path`` holds exactly ``data`` (never inflating more than that)."""
    try:
        with gzip.open(path, "rb") as file:
            return file.read(len(data) + 1) == data
    except (OSError, EOFError, ValueError):  # not gzip, truncated, damaged
        return False
