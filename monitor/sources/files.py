"""Snapshot files and folders -> raw snapshots.

A path may be a file or a folder (searched recursively for ``.json``,
``.txt``, ``.html``-free text and their ``.gz`` forms).  Each file yields one
:class:`Snapshot` per trial it holds: one for a study or a page, one per study
for a ``/studies`` page or a website export.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import ParseError, SourceError
from monitor.model import TrialRecord
from monitor.normalize import check_study, normalize_page, normalize_study, page_format, studies_in

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

    def snapshot(self) -> Snapshot:
        try:
            record = normalize_study(self.study) if self.study is not None else normalize_page(self.raw)
        except ParseError as exc:
            raise ParseError(f"{self.origin}: {exc.message}") from exc
        return Snapshot(record, self.raw, self.origin)


def raw_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


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


def parse_payloads(text: str, origin: str) -> list[Payload]:
    """Every trial payload in ``text`` (JSON or page text), recognised and
    checked for an identity; ``origin`` names it in errors."""
    stripped = text.lstrip()
    try:
        if not stripped:
            raise ParseError("the file is empty")
        if stripped[0] in "[{":
            try:
                payload = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ParseError(f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
            studies = studies_in(payload)
            for study in studies:
                check_study(study)
            if len(studies) == 1 and payload is studies[0]:
                return [Payload(origin, text, studies[0])]
            return [Payload(origin, json.dumps(study, ensure_ascii=False), study) for study in studies]
        page_format(text)
        return [Payload(origin, text)]
    except ParseError as exc:
        raise ParseError(f"{origin}: {exc.message}") from exc


def read_payloads_of(path: Path) -> list[Payload]:
    return parse_payloads(read_text(path), str(path))


def read_snapshots(path: Path) -> list[Snapshot]:
    return [payload.snapshot() for payload in read_payloads_of(path)]
