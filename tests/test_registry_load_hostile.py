"""A hostile registry against the whole registry's pooled load: whatever its pages hold, the load
with its pages decoded by the worker pool is the serial load (``MONITOR_WORKERS=0``) exactly:
the same versions, problems, words, requests and resume state.  Page 1 (it asks countTotal) is
read by the monitor itself; the hostile page is page 2, which the workers are handed."""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

import pytest
from test_registry_load_pooled import Counted, load

from monitor.clock import SetClock
from monitor.live import CycleReport, Live
from monitor.live_registry import load_registry
from monitor.prepare import decode
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store
from monitor.workers import CHUNK, Workers

from conftest import NOISE, OPENING, UNKNOWN, study
from ctgov_server import CtgovServer

FIRST, SECOND, THIRD = (study(OPENING / "2026-02-10.json"), study(UNKNOWN / "2026-02-02.json"),
                        study(NOISE / "2026-02-03.json"))  # fmt: skip


class Scripted(CtgovServer):
    """A registry that answers each ``pageToken`` (None: the first page) with the body given for it."""

    def __init__(self, pages: dict[str | None, bytes]) -> None:
        super().__init__()
        self.pages = pages

    def search(self, params: dict[str, list[str]]) -> tuple[int, bytes]:
        token = params.get("pageToken", [None])[0]
        if token not in self.pages:
            return 400, b'{"message": "invalid pageToken"}'
        return 200, self.pages[token]


@pytest.fixture
def scripted():
    servers: list[Scripted] = []

    def start(pages: dict[str | None, bytes]) -> Scripted:
        servers.append(Scripted(pages).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def text(record: dict) -> bytes:
    return json.dumps(record).encode()


def first_page(total: int = 3) -> bytes:
    return b'{"studies": [' + text(FIRST) + b'], "nextPageToken": "t1", "totalCount": ' + str(total).encode() + b"}"


def page(studies: list[bytes], token: bytes | None = None) -> bytes:
    after = b', "nextPageToken": "' + token + b'"' if token is not None else b""
    return b'{"studies": [' + b",".join(studies) + b"]" + after + b"}"


def both(server, tmp_path, page_size: int = 2) -> tuple[dict, dict, int]:
    serial = load(server, tmp_path / "serial", Workers(0), page_size)
    pool = Counted(2)
    pooled = load(server, tmp_path / "pooled", pool, page_size)
    return serial, pooled, pool.pages_read


def numbered(count: int) -> list[dict]:
    """``count`` copies of a real study, each under an NCT id of its own."""
    studies = []
    for i in range(count):
        record = copy.deepcopy(SECOND)
        record["protocolSection"]["identificationModule"]["nctId"] = f"NCT0900{i:04d}"
        studies.append(record)
    return studies


def test_a_page_token_past_ascii_is_followed_as_the_serial_load_follows_it(scripted, tmp_path):
    """JSON allows any character in a token; the serial load asks for the next page with it."""
    server = scripted({None: first_page(), "t1": page([text(SECOND)], "té".encode()), "té": page([text(THIRD)])})
    serial, pooled, _ = both(server, tmp_path)
    assert serial["outcome"] == (True, "2025-02-17") and len(serial["versions"]) == 3
    assert pooled == serial


@pytest.mark.parametrize(
    "body",
    [
        b'{\x0c"studies": [' + text(SECOND) + b"," + text(THIRD) + b"]}",
        b'{"studies": [' + text(SECOND) + b"," + text(THIRD) + b"]\x0b}",
    ],
    ids=["form-feed-before-studies", "vertical-tab-before-the-close"],
)
def test_a_page_wrapped_in_what_json_does_not_call_whitespace_is_not_json_for_the_workers_either(
    scripted, tmp_path, body
):
    """A form feed or a vertical tab is not JSON whitespace: the serial load asks the page again
    at half the size, then stops there (the next run resumes at it); the pooled load too."""
    server = scripted({None: first_page(), "t1": body})
    serial, pooled, _ = both(server, tmp_path)
    assert isinstance(serial["outcome"], str) and "non-JSON body" in serial["outcome"]
    assert len(serial["versions"]) == 1
    assert pooled == serial


def _not_first(record: dict) -> bytes:
    """The study with its protocolSection after another key (JSON objects are unordered)."""
    return text({"derivedSection": record.pop("derivedSection", {}), **record})


def _nested(record: dict) -> bytes:
    """The study with a ``protocolSection`` key in an object inside a list, after a comma."""
    record["derivedSection"] = {"notes": [1, {"protocolSection": "not a study"}]}
    return text(record)


@pytest.mark.parametrize("odd", [_not_first, _nested], ids=["protocol-section-not-first", "nested-protocol-section"])
def test_a_study_the_page_is_not_cut_at_does_not_move_the_json_paths_of_the_studies_after_it(scripted, tmp_path, odd):
    """A study of the wrong shape past the first piece of CHUNK studies is named by its own place
    on the page, whatever an odd study before it looks like to the cutting."""
    studies = numbered(CHUNK + 5)
    wrong = CHUNK + 3
    studies[wrong]["protocolSection"]["statusModule"]["overallStatus"] = 42
    bodies = [odd(s) if i == 3 else text(s) for i, s in enumerate(studies)]
    server = scripted({None: first_page(total=CHUNK + 10), "t1": page(bodies)})
    serial, pooled, _ = both(server, tmp_path, page_size=CHUNK + 5)
    assert [key for key, _ in serial["errors"]] == [f"NCT0900{wrong:04d}"]
    assert f"studies[{wrong}].protocolSection.statusModule.overallStatus" in serial["errors"][0][1]
    assert pooled == serial


def _twice(server, folder, workers: Workers) -> list[tuple[str, str, str | None]]:
    """Two whole-registry loads into one store: the second one's (trial, status, note) each."""
    folder.mkdir()
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0, timeout=5), sleep=lambda s: None)
    store = Store.open(f"sqlite:///{folder / 'monitor.db'}")
    live = Live(store, client, now=SetClock("2026-02-11T12:00:00"), workers=workers)
    live.store.watches.add_watch("registry", "all", live.now())
    try:
        for _ in range(2):
            report = CycleReport()
            with live.workers.session():
                load_registry(live, report, page_size=1)
    finally:
        client.close()
        store.close()
    return [(r.key, r.status, r.note) for r in report.results]


def test_a_load_again_knows_the_stored_trials_by_their_raw_payload_as_the_serial_load_does(server, tmp_path):
    """The second ``watch add --all`` (or a pass restarted from its first page) finds every trial
    byte-identical to its stored version, and says so, on the workers' pages too."""
    serial = _twice(server, tmp_path / "serial", Workers(0))
    pooled = _twice(server, tmp_path / "pooled", Counted(2))
    assert [note for _, _, note in serial] == ["same raw payload as version 1"] * 3
    assert pooled == serial


def dies_once(*args):
    """:func:`monitor.prepare.decode`, in a worker that ends abruptly the first time (as ``kill -9`` ends one)."""
    flag = Path(os.environ["MONITOR_TEST_DIES_ONCE"])
    if not flag.exists():
        flag.touch()
        os._exit(1)
    return decode(*args)


def test_a_worker_killed_mid_load_loses_nothing_and_the_pages_after_it_get_a_new_pool(
    server, tmp_path, monkeypatch, caplog
):
    """Page 2's worker dies: that page is read by the monitor itself, the failure is said once,
    and page 3 is decoded by a new pool (not refused by the broken one, with a warning, every page)."""
    monkeypatch.setenv("MONITOR_TEST_DIES_ONCE", str(tmp_path / "died"))
    monkeypatch.setattr("monitor.workers.decode", dies_once)
    serial = load(server, tmp_path / "serial", Workers(0), 1)
    pool = Counted(2)
    with caplog.at_level(logging.WARNING, logger="monitor.workers"):
        pooled = load(server, tmp_path / "pooled", pool, 1)
    assert (tmp_path / "died").exists(), "page 2's worker died"
    assert [r.getMessage()[:25] for r in caplog.records] == ["the worker pool failed (B"]
    assert pool.pages_read == 1, "page 3 decoded by the new pool"
    assert len(serial["versions"]) == 3
    assert pooled == serial
