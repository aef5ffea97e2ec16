"""Snapshot files and folders -> raw snapshots.

A path may be a file or a folder (searched recursively for ``.json``,
``.txt``, ``.html``-free text and their ``.gz`` forms).  Each file yields one
:class:`Snapshot` per trial it holds: one for a study or a page, one per study
for a ``/studies`` page or a website export.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import ParseError, SourceError
from monitor.model import TrialRecord
from monitor.normalize import normalize_page, normalize_study, studies_in

SUFFIXES = (".json", ".txt", ".json.gz", ".txt.gz")


@dataclass(frozen=True)
class Snapshot:
    """One trial record read from somewhere, with the bytes it came from."""

    record: TrialRecord
    raw: str
    origin: str


def snapshot_files(paths: list[str | Path]) -> list[Path]:
    """Every snapshot file under ``paths``, in a stable order; a missing path
    or an empty folder is an error."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
            if not files:
                raise SourceError(f"{path}: no snapshot files (*.json, *.txt, or .gz) in this folder")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder")
    return found


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise SourceError(f"{path}: a damaged gzip file ({exc})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from exc


def parse_text(text: str, origin: str) -> list[Snapshot]:
    """Every trial in ``text`` (JSON or page text); ``origin`` names it in errors."""
    stripped = text.lstrip()
    if not stripped:
        raise ParseError(f"{origin}: the file is empty")
    try:
        if stripped[0] in "[{":
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ParseError(f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
            return [
                Snapshot(normalize_study(study), json.dumps(study, ensure_ascii=False), origin)
                for study in studies_in(payload)
            ]
        return [Snapshot(normalize_page(text), text, origin)]
    except ParseError as exc:
        raise ParseError(f"{origin}: {exc.message}") from exc


def read_snapshots(path: Path) -> list[Snapshot]:
    return parse_text(read_text(path), str(path))


def iter_snapshots(paths: list[str | Path]) -> Iterator[Snapshot]:
    for path in snapshot_files(paths):
        yield from read_snapshots(path)
