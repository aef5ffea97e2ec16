"""A real HTTP server on 127.0.0.1 that answers like the ClinicalTrials.gov API v2,
from recorded records, with faults on demand.  Used by the tests and by bench/.

    server = CtgovServer({"NCT06821503": study_json, ...}).start()
    server.url                      # http://127.0.0.1:PORT/api/v2
    server.set_study(study)         # a new version of a trial (moves dataTimestamp)
    server.history["NCT..."] = [study_v1, study_v2]
    server.faults.append(Fault("/studies", status=429, retry_after="1"))
    # filter.advanced=AREA[LastUpdatePostDate]RANGE[2026-02-01,MAX] answers the studies updated since
    server.requests                 # every request served: (path, params)

A hostile registry, on demand (each mode is a misbehaviour met or feared in the wild):

    server.impostors["NCT06302556"] = foreign_study   # asked for one trial, answers another
    server.extra.append(foreign_study)                # every /studies page carries one trial too many
    server.set_raw("NCT06302556", b"...", "2026-02-02")  # a malformed record, served as given
    server.paging = "loop"                            # nextPageToken repeats forever ("endless": always new)
    server.tokens_expire = True                       # every pageToken answers 400, as a stale one does
    Fault("/studies", drip=2.0)                       # the body one byte every 2 s
    Fault("/studies", status=429, retry_after="1e9")  # come back in 31 years
    Fault("/studies", oversize=200 * 2**20)           # a body that goes on (no Content-Length)
    Fault("/studies", gzip_bomb=100 * 2**20)          # a small gzip body that inflates hugely
    Fault("/studies", hang=True)                      # headers never come, until stop()
    CtgovClient(server.root)                          # a base URL without /v2: /version answers 404
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

NCT = __import__("re").compile(r"^NCT\d{8}$")
SINCE = __import__("re").compile(r"AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),MAX\]")


@dataclass
class Fault:
    """The next request whose path contains ``path`` gets this instead of an answer."""

    path: str
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0  # seconds to stall before answering (a timeout, for a short client timeout)
    truncate: bool = False  # answer 200 with the first half of the real body
    body: bytes | None = None  # answer 200 with this body (an error page, say)
    times: int = 1
    drip: float = 0.0  # send the real answer one byte every `drip` seconds
    oversize: int = 0  # answer 200 with this many bytes, streamed without a Content-Length
    gzip_bomb: int = 0  # answer 200 with this many spaces, gzip-compressed (Content-Encoding: gzip)
    hang: bool = False  # never answer (until the server stops)
    gzip: bool = False  # send the real answer gzip-compressed, as the real registry does
    skip: int = 0  # let this many matching requests through first (a fault on the third page, say)


def nct_of(study: dict) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


def last_update(study: dict) -> str | None:
    return ((study["protocolSection"].get("statusModule") or {}).get("lastUpdatePostDateStruct") or {}).get("date")


class CtgovServer:
    def __init__(self, studies: Iterable[dict] = ()) -> None:
        self.studies: dict[str, bytes] = {}
        self.updates: dict[str, str | None] = {}
        self.titles: dict[str, tuple[str, str, list[str]]] = {}
        self.history: dict[str, list[dict]] = {}
        self.faults: list[Fault] = []
        self.refused: set[str] = set()  # ids the API answers 400 for, as it does for malformed ones
        self.chaos: tuple | None = None  # (random.Random, rate): a random fault on that share of requests
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.impostors: dict[str, dict] = {}  # asked id -> the record answered instead
        self.extra: list[dict] = []  # records added to every /studies page
        self.paging: str | None = None  # "loop" or "endless": a nextPageToken that never ends; "empty": ""
        self.tokens_expire = False  # every pageToken is refused (HTTP 400), as the registry refuses a stale one
        self.released = threading.Event()  # ends every hang
        self.data_timestamp = "2026-01-01T00:00:00"
        self.lock = threading.Lock()
        for study in studies:
            self.set_study(study, move_timestamp=False)
        self.httpd: ThreadingHTTPServer | None = None

    # --- the data -------------------------------------------------------------------

    def set_study(self, study: dict, move_timestamp: bool = True) -> None:
        nct = nct_of(study)
        protocol = study["protocolSection"]
        with self.lock:
            self.studies[nct] = json.dumps(study).encode()
            self.updates[nct] = last_update(study)
            self.titles[nct] = (
                protocol["identificationModule"].get("briefTitle", ""),
                protocol["statusModule"].get("overallStatus", ""),
                [c.lower() for c in (protocol.get("conditionsModule") or {}).get("conditions", [])],
            )
            if move_timestamp:
                self.data_timestamp = time.strftime("%Y-%m-%dT%H:%M:%S") + f".{time.monotonic_ns()}"

    def set_raw(self, nct: str, body: bytes, update: str | None) -> None:
        """Serve ``body`` as the record of ``nct``, whatever it holds (the probe says ``update``)."""
        with self.lock:
            self.studies[nct] = body
            self.updates[nct] = update
            self.titles[nct] = ("", "RECRUITING", [])
            self.data_timestamp += "m"

    def remove_study(self, nct: str) -> None:
        with self.lock:
            self.studies.pop(nct, None)
            self.updates.pop(nct, None)
            self.titles.pop(nct, None)
            self.data_timestamp += "x"

    def count(self, path_part: str) -> int:
        return sum(1 for path, _ in self.requests if path_part in path)

    # --- serving --------------------------------------------------------------------

    def start(self) -> CtgovServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def root(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/api"

    @property
    def url(self) -> str:
        return f"{self.root}/v2"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(request.path)
        params = parse_qs(parsed.query)
        with self.lock:
            self.requests.append((parsed.path, params))
            fault = next((f for f in self.faults if f.path in parsed.path), None)
            if fault and fault.skip:
                fault.skip -= 1
                fault = None
            elif fault:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            elif self.chaos and self.chaos[0].random() < self.chaos[1]:
                fault = self.chaos[0].choice(
                    [
                        Fault("", status=429, retry_after="0"),
                        Fault("", status=500),
                        Fault("", status=503),
                        Fault("", status=200, truncate=True),
                        Fault("", status=200, delay=0.5),
                        Fault("", status=200, body=b"<html>Bad Gateway</html>"),
                    ]
                )
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.hang:
            self.released.wait(120)
            return None
        if fault and (fault.oversize or fault.gzip_bomb):
            return self.send_hostile(request, fault)
        if fault and (fault.status != 200 or fault.body is not None) and not fault.truncate:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = fault.body if fault.body is not None else b'{"error": "fault"}'
            return self.send(request, 200 if fault.body is not None else fault.status, body, headers)
        status, body = self.answer(parsed.path, params)
        if fault and fault.truncate:
            body = body[: len(body) // 2]
        if fault and fault.gzip:
            return self.send(request, status, gzip.compress(body), {"Content-Encoding": "gzip"})
        self.send(request, status, body, drip=fault.drip if fault else 0.0)

    def send(self, request, status: int, body: bytes, headers: dict | None = None, drip: float = 0.0) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                request.send_header(key, value)
            request.end_headers()
            if not drip:
                request.wfile.write(body)
            for i in range(len(body) if drip else 0):
                request.wfile.write(body[i : i + 1])
                request.wfile.flush()
                if self.released.wait(drip):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_hostile(self, request, fault: Fault) -> None:
        try:
            request.send_response(200)
            request.send_header("Content-Type", "application/json")
            if fault.gzip_bomb:
                body = _bomb(fault.gzip_bomb)
                request.send_header("Content-Encoding", "gzip")
                request.send_header("Content-Length", str(len(body)))
                request.end_headers()
                request.wfile.write(body)
                return
            request.end_headers()  # no Content-Length: the body ends when the connection does
            request.wfile.write(b'{"studies": [')
            chunk = b" " * 65536
            for _ in range(fault.oversize // len(chunk)):
                request.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def answer(self, path: str, params: dict[str, list[str]]) -> tuple[int, bytes]:
        if path == "/api/v2/version":
            return 200, json.dumps({"apiVersion": "2.0.5", "dataTimestamp": self.data_timestamp}).encode()
        if path.startswith("/api/v2/studies/"):
            nct = path.rsplit("/", 1)[1]
            body = self.studies.get(nct)
            return (200, body) if body else (404, b'{"message": "not found"}')
        if path == "/api/v2/studies":
            status, body = self.search(params)
            return (status, self.hostile_page(params, body)) if status == 200 else (status, body)
        if path.startswith("/api/int/studies/"):
            parts = path.split("/")  # ['', 'api', 'int', 'studies', NCT, 'history', n?]
            versions = self.history.get(parts[4])
            if versions is None:
                return 404, b'{"message": "not found"}'
            if len(parts) == 6:
                changes = [
                    {"version": i, "date": last_update(s) or "2020-01-01", "moduleLabels": ["Study Status"]}
                    for i, s in enumerate(versions)
                ]
                return 200, json.dumps({"changes": changes}).encode()
            index = int(parts[6])
            if not 0 <= index < len(versions):
                return 404, b'{"message": "no such version"}'
            return 200, json.dumps({"studyVersion": index, "study": versions[index]}).encode()
        return 404, b'{"message": "unknown path"}'

    def search(self, params: dict[str, list[str]]) -> tuple[int, bytes]:
        size = int(params.get("pageSize", ["10"])[0])
        token = params.get("pageToken", ["0"])[0]
        if not token.isdigit() or (self.tokens_expire and "pageToken" in params):  # stale, or not ours
            return 400, json.dumps({"message": f"invalid pageToken {token[:40]}"}).encode()
        start = int(token)
        with self.lock:
            if "filter.ids" in params:
                ids = [i for part in params["filter.ids"] for i in part.replace("|", ",").split(",") if i]
                bad = [i for i in ids if not NCT.match(i) or i in self.refused]
                if bad:
                    return 400, json.dumps({"message": f"invalid NCT id {bad[0]}"}).encode()
                found = [i for i in dict.fromkeys(ids) if i in self.studies and self.matches(i, params)]
            elif "filter.advanced" in params and not SINCE.search(params["filter.advanced"][0]):
                return 400, json.dumps({"message": "filter.advanced: only LastUpdatePostDate ranges here"}).encode()
            else:
                found = [nct for nct in sorted(self.titles) if self.matches(nct, params)]
                since = SINCE.search(params.get("filter.advanced", [""])[0])
                if since:  # AREA[LastUpdatePostDate]RANGE[day,MAX]: updated on or after that day
                    found = [nct for nct in found if (self.updates[nct] or "") >= since.group(1)]
            page = found[start : start + size]
            slim = "fields" in params
            items = [self.slim(nct) if slim else self.studies[nct] for nct in page]
        token = str(start + size) if start + size < len(found) else None
        total = params.get("countTotal") == ["true"] and "pageToken" not in params  # said with the first page only
        body = (
            b'{"studies": ['
            + b",".join(items)
            + b"]"
            + (f', "nextPageToken": "{token}"'.encode() if token else b"")
            + (f', "totalCount": {len(found)}'.encode() if total else b"")
            + b"}"
        )
        return 200, body

    def matches(self, nct: str, params: dict[str, list[str]]) -> bool:
        """Whether a study answers a search's ``query.cond`` and ``query.term`` (none: every study)."""
        cond = " ".join(params.get("query.cond", [])).lower()
        term = " ".join(params.get("query.term", [])).lower()
        title, _, conditions = self.titles.get(nct, ("", "", []))
        return (not cond or any(cond in c for c in conditions)) and (not term or term in title.lower())

    def hostile_page(self, params: dict[str, list[str]], body: bytes) -> bytes:
        """A page as the hostile modes have it: impostors, extra records, a paging that never ends."""
        if not (self.impostors or self.extra or self.paging):
            return body
        page = json.loads(body)
        page["studies"] = [self.impostors.get(_nct_or_none(s), s) for s in page["studies"]]
        page["studies"] += self.extra
        if self.paging:
            start = int(params.get("pageToken", ["0"])[0] or 0)
            page["nextPageToken"] = {"loop": "1", "empty": ""}.get(self.paging, str(start + 1))
        return json.dumps(page).encode()

    def slim(self, nct: str) -> bytes:
        title, status, _ = self.titles[nct]
        return json.dumps(
            {
                "protocolSection": {
                    "identificationModule": {"nctId": nct, "briefTitle": title},
                    "statusModule": {"overallStatus": status, "lastUpdatePostDateStruct": {"date": self.updates[nct]}},
                }
            }
        ).encode()


_BOMBS: dict[int, bytes] = {}


def _bomb(size: int) -> bytes:
    if size not in _BOMBS:
        _BOMBS[size] = gzip.compress(b" " * size, compresslevel=9)
    return _BOMBS[size]


def _nct_or_none(study: dict) -> str | None:
    try:
        return nct_of(study)
    except (KeyError, TypeError, AttributeError):
        return None
