"""Snapshot files and folders -> raw snapshots.

A path may be a file or a folder (searched recursively for ``.json``,
``.txt``, ``.html``-free text and their ``.gz`` forms).  Each file yields one
:class:`Snapshot` per trial it holds: one for a study or a page, one per study
for a ``/studies`` page or a website export.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor import limits as _limits
from monitor.errors import ParseError, SourceError
from monitor.limits import MIB
from monitor.model import TrialRecord
from monitor.normalize import check_study, jsontext, normalize_page, normalize_study, page_format, studies_in

SUFFIXES = (".json", ".txt", ".json.gz", ".txt.gz")


@dataclass(frozen=True)
class Snapshot:
    """One trial record read from somewhere, with the text it came from."""

    record: TrialRecord
    raw: str
    origin: str

    @property
    def raw_hash(self) -> str:
        return raw_hash(self.raw)

    def snapshot(self) -> Snapshot:
        """A snapshot is an answer already normalized (:class:`monitor.sources.base.Answer`)."""
        return self


@dataclass(frozen=True)
class Payload:
    """One trial's raw payload, read and recognised but not yet normalized:
    an API study (``study``) or a registry page (``study`` is None)."""

    origin: str
    raw: str
    study: dict[str, Any] | None = None

    @property
    def raw_hash(self) -> str:
        return raw_hash(self.raw)

    def registry_date(self, record: TrialRecord) -> tuple[str, str]:
        """When the registry says this copy is from: ``lastUpdatePostDate``, then the API's
        ``versionHolder`` (the day the copy was served), as sortable text."""
        holder = ((self.study or {}).get("derivedSection") or {}).get("miscInfoModule") or {}
        return record.last_update_posted or "", holder.get("versionHolder") or ""

    def snapshot(self) -> Snapshot:
        try:
            record = normalize_study(self.study) if self.study is not None else normalize_page(self.raw)
        except ParseError as exc:
            raise ParseError(f"{self.origin}: {exc.message}") from exc
        return Snapshot(record, self.raw, self.origin)


def raw_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def snapshot_files(paths: list[str | Path], problems: list[str] | None = None) -> list[Path]:
    """Every snapshot file under ``paths``, in a stable order; a missing path,
    an empty folder, a symlink loop or a file that is not a regular file (a
    FIFO, a device) is an error naming it, or, when a ``problems`` list is
    given, appended to it.  Nothing is opened here."""
    found: list[Path] = []
    for given in paths:
        try:
            found.extend(_files_at(Path(given)))
        except SourceError as exc:
            if problems is None:
                raise
            problems.append(exc.message)
    return found


def _files_at(path: Path) -> list[Path]:
    mode = _mode(path)
    if not stat.S_ISDIR(mode):
        return [_regular(path, mode)]
    files = sorted(p for p in path.rglob("*") if p.name.endswith(SUFFIXES) and not p.is_dir())
    if not files:
        raise SourceError(f"{path}: no snapshot files (*.json, *.txt, or .gz) in this folder")
    return [_regular(file, _mode(file)) for file in files]


def is_file_argument(path: str | Path) -> bool:
    """Whether a command argument names something on disk (not a trial id):
    then it is read as a file, and refused clearly if it is not a regular one."""
    try:
        os.lstat(path)
    except (OSError, ValueError):
        return False
    return True


_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _mode(path: Path) -> int:
    try:
        return os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceError(f"{path}: a symbolic link loop (it never reaches a file)") from exc
        if exc.errno == errno.ENOENT:
            what = "a broken symbolic link" if os.path.islink(path) else "no such file or folder"
            raise SourceError(f"{path}: {what}") from exc
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:  # a NUL in the name
        raise SourceError(f"{path!r}: not a usable file name") from exc


def _regular(path: Path, mode: int) -> Path:
    if stat.S_ISREG(mode):
        return path
    if stat.S_ISDIR(mode):
        raise SourceError(f"{path}: a folder, where one snapshot file is needed")
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    raise SourceError(f"{path}: {kind}, not a snapshot file; give a regular file or a folder")


def read_text(path: Path, limits: _limits.Limits | None = None) -> str:
    """A regular file's text, within the size limits; gzip is decompressed as a
    stream and refused as soon as it passes the decompressed-size limit."""
    limits = limits or _limits.DEFAULT_LIMITS
    _regular(path, _mode(path))
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > limits.max_file_bytes:
        limit = limits.max_file_bytes
        raise SourceError(f"{path}: larger than {limit:,} bytes, the limit for one file (limits.max_file_bytes)")
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(path, data, limits.max_decompressed_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from exc


def _gunzip(path: Path, data: bytes, cap: int) -> bytes:
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(min(MIB, cap + 1 - len(out))):
                out += chunk
                if len(out) > cap:
                    raise SourceError(
                        f"{path}: decompresses to more than {cap:,} bytes, the limit (limits.max_decompressed_bytes)"
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{path}: a damaged gzip file ({exc})") from exc
    return bytes(out)


def parse_payloads(text: str, origin: str, limits: _limits.Limits | None = None) -> list[Payload]:
    """Every trial payload in ``text`` (JSON or page text), recognised and
    checked against the declared shape and ``limits``; ``origin`` names it in errors."""
    stripped = text.lstrip()
    try:
        if not stripped:
            raise ParseError("the file is empty")
        if stripped[0] in "[{":
            payload = jsontext.decode(text, limits)
            studies, at = studies_in(payload)
            for study, prefix in zip(studies, at, strict=True):
                check_study(study, prefix)
            if len(studies) == 1 and payload is studies[0]:
                return [Payload(origin, text, studies[0])]
            return [Payload(origin, json.dumps(study, ensure_ascii=False), study) for study in studies]
        if "\x00" in text:
            raise ParseError("the page holds a NUL character, which cannot be stored")
        page_format(text)
        return [Payload(origin, text)]
    except ParseError as exc:
        raise ParseError(f"{origin}: {exc.message}") from exc


def read_payloads_of(path: Path, limits: _limits.Limits | None = None) -> list[Payload]:
    """A file's payloads within ``limits`` (default :data:`monitor.limits.DEFAULT_LIMITS`;
    the CLI and the daemon pass the configured ones)."""
    return parse_payloads(read_text(path, limits), str(path), limits)


def read_snapshots(path: Path, limits: _limits.Limits | None = None) -> list[Snapshot]:
    return [payload.snapshot() for payload in read_payloads_of(path, limits)]
