"""A page of full studies cut into pieces without decoding it, for the worker processes.

The parent of a pooled fetch (:mod:`monitor.workers`) reads a ``/studies`` page of up to
1,000 full records (about 20-30 MB) but does not decode it: decoding, checking against the
limits and serializing each study cost about 1 ms a trial, as much as everything else the
parent does.  :func:`split_page` finds, at C speed (``bytes.find``), where each study
starts, and cuts the page into pieces of whole studies that the workers decode.

It reads only the page's wrapper and the gaps between studies, and accepts only the shape
ClinicalTrials.gov answers::

    {"studies": [{"protocolSection": ...}, {"protocolSection": ...}], "nextPageToken": "..."}

(whitespace allowed anywhere JSON allows it, the token optional).  The cuts are a guess
that the workers confirm: each piece must decode, on its own wrapped in ``[...]``, to a list
of studies; then the page is valid JSON whose studies are those of the pieces in order
(the wrapper and the gaps were matched exactly here).  A cut inside a study leaves its
piece unbalanced, so it never decodes.  Anything else (another wrapper, an empty list, a
piece that does not decode, a study that breaks a limit) is read the old way, by
:func:`monitor.normalize.jsontext.decode` of the whole page, so its error, its retry and
its refusal are exactly those of an unpooled fetch.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from monitor.sources.ctgov_answers import chunks
from monitor.sources.files import Payload
from monitor.sources.http import Hostile

PAGE_LIMIT = 1000  # the API's largest pageSize
# JSON whitespace only (a bytes pattern's \s also takes \f and \v, which JSON does not); a token
# of printable ASCII without escapes (any other is read the old way, as the serial load reads it)
_HEAD = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"studies"[ \t\r\n]*:[ \t\r\n]*\[[ \t\r\n]*')
_TAIL = re.compile(
    rb'\][ \t\r\n]*(?:,[ \t\r\n]*"nextPageToken"[ \t\r\n]*:[ \t\r\n]*"([\x20\x21\x23-\x5b\x5d-\x7e]+)"[ \t\r\n]*)?'
    rb"\}[ \t\r\n]*\Z"
)
_TAIL_WINDOW = 4096  # the page's end: the list's close and a token (ClinicalTrials.gov's are ~40 characters)
_START = b'"protocolSection"'
_SPACE = b" \t\r\n"


@dataclass(frozen=True)
class SplitPage:
    """Where the studies of a page start and end; ``token``: its ``nextPageToken`` (None: none)."""

    starts: list[int]  # the offset of each study's opening brace
    ends: list[int]  # the offset just past each study (its separating comma or the list's close)
    token: str | None

    def pieces(self, body: bytes, size: int) -> list[tuple[int, bytes]]:
        """``(index of its first study, bytes of its studies and the commas between them)``, ``size`` studies each."""
        return [
            (first, body[self.starts[first] : self.ends[min(first + size, len(self.starts)) - 1]])
            for first in range(0, len(self.starts), size)
        ]


def split_page(body: bytes) -> SplitPage | None:
    """The studies of ``body`` (a ``/studies`` page), or None when it is not cut here."""
    head = _HEAD.match(body)
    window = max(0, len(body) - _TAIL_WINDOW)
    tail = _TAIL.search(body, window)
    if head is None or tail is None or head.end() >= tail.start() or body[head.end() : head.end() + 1] != b"{":
        return None
    first, end = head.end(), tail.start()
    starts, ends = [first], []
    at = body.find(_START, first + 1, end)
    while at >= 0:
        brace = _back(body, at)
        if brace > first and body[brace] == ord("{"):
            comma = _back(body, brace)
            if body[comma] == ord(","):
                starts.append(brace)
                ends.append(_back(body, comma) + 1)
        at = body.find(_START, at + len(_START), end)
    ends.append(_back(body, end) + 1)
    token = tail.group(1)
    return SplitPage(starts, ends, token.decode("ascii") if token is not None else None)


def _back(body: bytes, at: int) -> int:
    """The offset of the last character before ``at`` that is not JSON whitespace."""
    at -= 1
    while at > 0 and body[at] in _SPACE:
        at -= 1
    return at


class PooledBatches:
    """The part of :class:`~monitor.sources.ctgov.CtgovClient` that fetches full records with
    their pages decoded in the worker pool it is given (``pages``: :class:`monitor.workers.Workers`)."""

    def _by_ids_pooled(self, ids: list[str], batch: int, on_bad_id) -> Iterator[Any]:
        """As :meth:`_by_ids`, each page decoded in the worker pool (:mod:`monitor.workers`), as
        :class:`~monitor.prepare.Decoded` studies; the next batch is asked for while the workers
        read the one before (two pages at most in hand)."""
        pending: deque[tuple[list[str], Sent]] = deque()
        try:
            for part in chunks(ids, batch):
                pending.append((part, self._send(part)))
                if len(pending) > 1:
                    yield from self._received(*pending.popleft(), on_bad_id)
            while pending:
                yield from self._received(*pending.popleft(), on_bad_id)
        finally:
            for _, sent in pending:
                if sent.pieces is not None:
                    sent.pieces.cancel()

    def _send(self, ids: list[str]) -> Sent:
        """Ask for the full records of ``ids`` and hand the page to the workers; a failure is kept
        and raised where the batch is read, after the batches before it."""
        url, params = f"{self.url}/studies", {"filter.ids": ",".join(ids), "pageSize": str(min(PAGE_LIMIT, len(ids)))}
        try:
            response, attempt = self._get(url, params, None, True, lambda response, attempt: (response, attempt))
        except Exception as exc:
            return Sent(url, params, error=exc)
        pieces = self.pages.decode_page(response.body, url, ids, self.limits)
        return Sent(url, params, response, attempt, pieces)

    def _received(self, ids: list[str], sent: Sent, on_bad_id) -> Iterator[Any]:
        try:
            if sent.error is not None:
                raise sent.error
            answered = sent.pieces.studies() if sent.pieces is not None else None
            if answered is not None:
                sent.response = sent.pieces = None  # the page's bytes and futures: its studies are all in answered
            if answered is None:  # not a page the workers read: read the old way, here
                try:
                    first = self._decode(sent.response)
                except Broken as exc:  # asked again, as an unpooled fetch would, with the tries left
                    first = self._get(sent.url, sent.params, None, True, self._decode, sent.attempt + 1, str(exc))
                answered = list(self._pages(sent.url, sent.params, first))
        except (Refused, Hostile) as refused:
            yield from self._halved(ids, refused, {}, on_bad_id)
            return
        yield from self._only_asked(ids, answered, on_bad_id)


@dataclass
class Sent:
    """A batch asked for, its page with the workers (or the failure to raise when it is read)."""

    url: str
    params: dict[str, str]
    response: Any = None
    attempt: int = 0
    pieces: Any = None  # monitor.workers.PagePieces, or None: read the page here
    error: Exception | None = None


def same(copy: Any, first: Any) -> bool:
    """Whether two copies of a study are the same record (decoded ones compared by their text first)."""
    if isinstance(copy, Payload) and isinstance(first, Payload):
        return copy.raw == first.raw or json.loads(copy.raw) == json.loads(first.raw)
    return copy == first


class Refused(Exception):
    """The API refused a request as bad (HTTP 400)."""


class Broken(Exception):
    """A body that is not JSON at all (truncated or garbled): asked again."""
