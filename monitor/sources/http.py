"""One bounded GET: a deadline for the whole request, a cap on the body as received
and once decompressed, and a stop that interrupts it.

httpx's timeouts apply to each network operation, so a server dripping one byte
every two seconds never trips them.  Here the request runs in a worker thread
while the caller waits, looking every 50 ms at the clock and at ``should_stop``:
at the deadline the caller gets :class:`TimedOut`, on a stop
:class:`~monitor.errors.Stopped`, whatever the server does.  An abandoned worker
notices at its next chunk (or its next read timeout, no longer than the whole
deadline) and closes its connection; it is a daemon thread, so it never keeps the
process alive.

The body is read raw and decompressed here (gzip or zlib, the encodings we ask
for), at most 1 MiB at a time, so a gzip bomb is refused at the cap instead of
filling memory (peak: the cap and 1 MiB).
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from monitor.errors import SourceError, Stopped
from monitor.limits import Limits

POLL_SECONDS = 0.05
CHUNK_BYTES = 64 * 1024
INFLATE_BYTES = 1024 * 1024  # the most one step of decompression makes
ACCEPT_ENCODING = "gzip, deflate"


class TimedOut(Exception):
    """The whole request took longer than its deadline (retried by the caller)."""


class TooLarge(SourceError):
    """The body, as received or decompressed, is larger than the limit allows."""


class Hostile(SourceError):
    """An answer that is JSON we refuse (:func:`monitor.normalize.jsontext.decode`): never retried."""


class Garbled(Exception):
    """The body does not decompress (retried by the caller, like a truncated body)."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: httpx.Headers
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def bounded_get(
    http: httpx.Client,
    url: str,
    params: dict[str, str] | None,
    seconds: float,
    limits: Limits,
    should_stop: Callable[[], bool] = lambda: False,
) -> Answer:
    """GET ``url``; the whole answer within ``seconds``, within ``limits``."""
    deadline = time.monotonic() + seconds
    cancelled = threading.Event()
    done = threading.Event()
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["answer"] = _read(http, url, params, seconds, deadline, limits, cancelled)
        except BaseException as exc:  # handed to the caller, who decides
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="ctgov-request", daemon=True).start()
    while not done.wait(POLL_SECONDS):
        if should_stop():
            cancelled.set()
            raise Stopped(f"stopped while waiting for {url}")
        if time.monotonic() >= deadline:
            cancelled.set()
            raise TimedOut(f"no complete answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["answer"]  # type: ignore[return-value]


def sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool]) -> None:
    """``time.sleep``, in slices, raising :class:`~monitor.errors.Stopped` when ``should_stop`` turns true."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if should_stop():
            raise Stopped("stopped while waiting to ask ClinicalTrials.gov again")
        time.sleep(min(left, POLL_SECONDS))


def _read(http, url, params, seconds, deadline, limits: Limits, cancelled: threading.Event) -> Answer:
    with http.stream("GET", url, params=params, timeout=httpx.Timeout(seconds)) as response:
        where = str(response.request.url)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise TooLarge(
                _too_large(where, f"is larger ({int(declared):,} bytes)", limits.max_body_bytes, "max_body_bytes")
            )
        inflate = _Inflate(response.headers.get("Content-Encoding"), limits.max_decompressed_bytes, where)
        body = bytearray()
        received = 0
        for chunk in response.iter_raw(CHUNK_BYTES):
            if cancelled.is_set() or time.monotonic() >= deadline:
                raise TimedOut("abandoned")
            received += len(chunk)
            if received > limits.max_body_bytes:
                raise TooLarge(_too_large(where, "is larger", limits.max_body_bytes, "max_body_bytes"))
            inflate.feed(chunk, body)
        inflate.finish(body)
        return Answer(response.status_code, response.headers, bytes(body), where)


class _Inflate:
    """Decompress a body a bounded slice at a time; identity passes through."""

    def __init__(self, encoding: str | None, limit: int, where: str) -> None:
        name = (encoding or "identity").strip().lower()
        if name not in ("identity", "gzip", "x-gzip", "deflate"):
            raise SourceError(f"{where} answered in the {name!r} encoding, which we did not ask for")
        self.z = None if name == "identity" else zlib.decompressobj(wbits=47)  # gzip or zlib header
        self.limit, self.where = limit, where

    def feed(self, data: bytes, out: bytearray) -> None:
        if self.z is None:
            self._add(out, data)
            return
        try:
            while True:  # never more than INFLATE_BYTES at once: a bomb is refused holding the cap and 1 MiB
                wanted = min(INFLATE_BYTES, self.limit - len(out) + 1)
                piece = self.z.decompress(data, wanted)
                self._add(out, piece)
                data = self.z.unconsumed_tail
                if not data and len(piece) < wanted:  # all input read, and no output left waiting
                    return
        except zlib.error as exc:
            raise Garbled(f"a body that does not decompress ({exc})") from exc

    def finish(self, out: bytearray) -> None:
        if self.z is not None:
            try:
                self._add(out, self.z.flush(self.limit - len(out) + 1))
            except zlib.error as exc:
                raise Garbled(f"a body that does not decompress ({exc})") from exc

    def _add(self, out: bytearray, piece: bytes) -> None:
        out += piece
        if len(out) > self.limit:
            raise TooLarge(_too_large(self.where, "decompresses to more", self.limit, "max_decompressed_bytes"))


def _too_large(where: str, what: str, limit: int, name: str) -> str:
    return f"{where}: the answer {what} than the {limit:,}-byte limit (limits.{name}); refused"


@functools.cache
def tls() -> ssl.SSLContext:
    """httpx's default TLS context (its certificate bundle), made once a process and shared by every client."""
    return httpx.create_ssl_context()
