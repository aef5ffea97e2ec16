"""What a worker process makes of registry answers, away from the store (:mod:`monitor.workers`
runs these in its pool): each answer normalized to its :class:`TrialRecord`, projected for
comparison when the trial has a stored version (:func:`monitor.diff.project`, hashed by
:func:`monitor.diff.hash_projection`; a new trial is stored unhashed and its versions row
packed here), and, for a page the parent did not decode (:mod:`monitor.sources.ctgov_pages`),
each piece of the page decoded and checked against the limits first.

A trial's failure comes back as its exception (:attr:`Prepared.error`), raised in the parent
where the serial path would have raised it; a piece that does not decode cleanly comes back as
None, and the parent reads its page the old way, with the exact error an unpooled read gives.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import traceback
from dataclasses import dataclass
from typing import Any

from monitor.diff import UNHASHED, hash_projection, project
from monitor.errors import ParseError
from monitor.limits import Limits
from monitor.model import TrialRecord
from monitor.normalize import jsontext
from monitor.normalize.schema import check_study
from monitor.sources.ctgov_answers import nct_of, updated_of
from monitor.sources.files import Payload, Snapshot
from monitor.store.packing import pack_raw, pack_record


@dataclass(frozen=True)
class Prepared:
    """What a worker made of one answer: its record, the hash of its comparison form, and
    (when the trial has a stored version to diff against) the projection itself; or the
    exception normalizing it raised.  A worker pickles the record and the projection: a page of
    results waits in the parent as bytes (about half the size of their objects) until each is used."""

    record: TrialRecord | bytes | None = None
    content_hash: str | None = None
    projected: bytes | None = None  # the projection, pickled: a page of them waits compactly in the parent
    packed: tuple[bytes, bytes] | None = None  # a new trial's (record, raw) packed for its versions row
    error: BaseException | None = None

    def projection(self) -> tuple[dict, dict] | None:
        """The projection the worker made (None: a new trial, not projected)."""
        return pickle.loads(self.projected) if self.projected is not None else None

    def snapshot(self, answer: Payload) -> Snapshot:
        """The answer's snapshot, as :meth:`Payload.snapshot` gives it (or raises)."""
        if self.error is not None:
            raise self.error
        assert self.record is not None
        record = pickle.loads(self.record) if isinstance(self.record, bytes) else self.record
        return Snapshot(record, answer.raw, answer.origin)


@dataclass(frozen=True)
class Decoded(Payload):
    """A registry study a worker decoded from its page (:func:`decode`, sent there by
    :meth:`monitor.workers.Workers.decode_page`), with what it made of it; ``key`` is its NCT id
    (None when it has none)."""

    key: str | None = None
    prepared: Prepared | None = None
    refused: str | None = None  # a whole-registry study of the wrong shape: why (never stored)
    updated: str | None = None  # a whole-registry study's last-update date

    def snapshot(self) -> Snapshot:
        assert self.prepared is not None
        return self.prepared.snapshot(self)


def prepare(jobs: list[tuple[str, str, bool]]) -> list[Prepared]:
    """In a worker: each ``(origin, raw, projection wanted)`` normalized and projected."""
    # raw is json.dumps of the study as received: it loads back to an equal study
    return [_prepare_one(origin, raw, json.loads(raw), wanted) for origin, raw, wanted in jobs]


def decode(
    piece: bytes, origin: str, wanted: frozenset[str], limits: Limits, first: int | None = None
) -> list[tuple] | None:
    """In a worker: the studies of one piece of a page (:mod:`monitor.sources.ctgov_pages`),
    each as ``(NCT id, raw text, Prepared, refused, updated)``; None when the piece does not decode
    cleanly within ``limits`` (the parent then reads the whole page the old way, with its exact error).
    ``first``: for a page of the whole registry, the index on it of the piece's first study; each
    study is then checked against the schema (one of the wrong shape comes back ``refused``, with
    its JSON path on the page, and unprepared), and its last-update date comes back as ``updated``;
    a study whose NCT id cannot be read sends the page back to the parent, which names it."""
    try:
        text = "[" + piece.decode("utf-8") + "]"
        studies = json.loads(text, parse_constant=_refuse)  # past the recursion limit: RecursionError
        if not _clear(studies, limits):
            return None  # too deep, or a number the limits refuse: the page is read the old way, with its error
        escaped = _ESCAPED_PROBLEM.search(text) is not None
        texts = []
        for study in studies:
            raw = json.dumps(study, ensure_ascii=False)  # the stored text, as an unpooled fetch makes it
            if escaped or len(raw) > limits.max_text_chars:  # a NUL, a surrogate or a text too long, perhaps
                jsontext.check_values(study, limits)
            texts.append(raw)
    except Exception:  # broken, hostile or cut in the wrong place: read the old way
        return None
    if first is None:  # a page of trials asked for by id: the parent matches them with what it asked
        found = []
        for study, raw in zip(studies, texts, strict=True):
            key = nct_of(study)
            found.append((key, raw, _prepare_one(origin, raw, study, key in wanted) if key else None, None, None))
        return found
    try:
        pairs = enumerate(zip(studies, texts, strict=True), first)
        return [_registry_study(study, raw, origin, index, wanted) for index, (study, raw) in pairs]
    except _Unread:
        return None


class _Unread(Exception):
    """A whole-registry study whose NCT id cannot be read: the parent reads its page and names it."""


def _registry_study(study: Any, raw: str, origin: str, index: int, wanted: frozenset[str]) -> tuple:
    key = nct_of(study)
    if key is None:
        raise _Unread
    try:
        check_study(study, f"{origin}: studies[{index}].")
    except ParseError as exc:  # that trial's problem, not the whole load's
        return key, raw, None, exc.message, None
    return key, raw, _prepare_one(origin, raw, study, key in wanted), None, updated_of(study)


def _refuse(name: str) -> None:
    raise ValueError(name)


def _clear(studies: list, limits: Limits) -> bool:
    """Whether ``studies`` nest within ``limits.max_json_depth`` (less the page's level) and hold
    only finite numbers of at most ``limits.max_number_digits`` digits: one walk over the
    containers, checking numbers (:func:`~monitor.normalize.jsontext.check_values` looks at every
    value, with its path, at several times the cost)."""
    limit, bound = limits.max_json_depth - 1, 10**limits.max_number_digits
    stack = [(studies, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return False
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is dict or kind is list:
                stack.append((item, depth + 1))
            elif (kind is int and abs(item) >= bound) or (kind is float and not math.isfinite(item)):
                return False
    return True


_ESCAPED_PROBLEM = re.compile(r"\\u0000|\\u[dD][89a-fA-F]")  # a NUL or a surrogate: JSON text holds them only escaped


def _prepare_one(origin: str, raw: str, study: dict, wanted: bool) -> Prepared:
    try:
        record = Payload(origin, raw, study).snapshot().record
        data = record.to_dict()
        if wanted:  # a trial with a stored version: its projection, for the diff
            projected = project(record, data)
            return Prepared(_pickled(record), hash_projection(projected), _pickled(projected))
        # a new trial: its first version is stored unhashed (monitor.diff.UNHASHED), not projected
        return Prepared(_pickled(record), UNHASHED, packed=(pack_record(data, raw), pack_raw(raw)))
    except Exception as exc:  # the trial's problem, raised again in the parent
        return Prepared(error=_portable(exc))


def _pickled(value: Any) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _portable(exc: Exception) -> BaseException:
    """``exc`` as it can travel back to the parent: itself when it pickles, otherwise an
    exception of the same name and text.  The worker's traceback rides along as a note."""
    note = "in a worker process:\n" + "".join(traceback.format_exception(exc)).rstrip()
    try:
        back = pickle.loads(pickle.dumps(exc))
        if type(back) is not type(exc) or str(back) != str(exc):
            raise TypeError("does not survive pickling")
    except Exception:
        back = type(type(exc).__name__, (Exception,), {"__module__": type(exc).__module__})(str(exc))
    back.add_note(note)
    return back
