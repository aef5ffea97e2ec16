"""The whole registry's first load with its pages decoded by the worker pool is the serial load,
exactly: the same versions stored byte for byte, the same problems with the same words, the
same requests; and against a hostile registry (a study of the wrong shape, one whose id cannot
be read, a page that is not JSON, JSON the limits refuse) the same refusals.  Only pages after
the first go to the workers (the first asks countTotal), so every fault here is on page 2 or 3."""

from __future__ import annotations

import copy
import json
import sqlite3

import pytest

from monitor.clock import SetClock
from monitor.errors import SourceError
from monitor.live import CycleReport, Live
from monitor.live_registry import load_registry
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store
from monitor.workers import Workers

from ctgov_server import Fault

SECOND = "NCT06387628"  # the server's second trial: page 2 at one study a page


class Counted(Workers):
    """The worker pool, counting the pages its workers read in full (not handed back)."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers, minimum=1)
        self.pages_read = 0

    def decode_page(self, *args, **kwargs):
        pieces = super().decode_page(*args, **kwargs)
        if pieces is not None:
            studies = pieces.studies
            pieces.studies = lambda: self._count(studies())
        return pieces

    def _count(self, studies):
        self.pages_read += studies is not None
        return studies


def load(server, folder, workers: Workers, page_size: int) -> dict:
    """A whole-registry load into a new SQLite file: what it stored, said and asked."""
    folder.mkdir()
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0, timeout=5), sleep=lambda s: None)
    store = Store.open(f"sqlite:///{folder / 'monitor.db'}")
    live = Live(store, client, now=SetClock("2026-02-11T12:00:00"), workers=workers)
    live.store.watches.add_watch("registry", "all", live.now())
    report, start = CycleReport(), len(server.requests)
    try:
        with live.workers.session():
            outcome = load_registry(live, report, page_size=page_size)
    except SourceError as exc:
        outcome = exc.message
    finally:
        errors = live.store.watches.trial_errors()
        client.close()
        store.close()
    with sqlite3.connect(folder / "monitor.db") as conn:
        rows = conn.execute("SELECT trial_key, number, content_hash, record, raw, last_update_posted FROM versions")
        versions = sorted(rows)
        state = sorted(conn.execute("SELECT key, value FROM source_state WHERE key LIKE 'ctgov.load_%'"))
    asked = [(p, q) for p, q in server.requests[start:] if p == "/api/v2/studies"]
    return {
        "outcome": outcome,
        "problems": report.problems,
        "errors": [(key, message) for key, message, _ in errors],
        "versions": versions,
        "state": state,
        "asked": asked,
    }


def both(server, tmp_path, page_size: int = 1, arrange=lambda: None) -> tuple[dict, dict, int]:
    """The serial load and the pooled one, each after ``arrange()`` set the registry up."""
    arrange()
    serial = load(server, tmp_path / "serial", Workers(0), page_size)
    arrange()
    pool = Counted(2)
    pooled = load(server, tmp_path / "pooled", pool, page_size)
    return serial, pooled, pool.pages_read


def edited(server, nct: str, edit) -> None:
    study = json.loads(server.studies[nct])
    edit(study)
    server.set_raw(nct, json.dumps(study).encode(), server.updates[nct])


def test_the_workers_read_every_page_after_the_first_and_store_what_the_serial_load_stores(server, tmp_path):
    serial, pooled, read = both(server, tmp_path)
    assert read == 2, "pages 2 and 3 decoded by the workers"
    assert serial["outcome"] == (True, "2025-02-17") and len(serial["versions"]) == 3
    assert pooled == serial


def test_a_study_of_the_wrong_shape_is_refused_with_the_same_words_and_json_path(server, tmp_path):
    def arrange() -> None:
        edited(server, SECOND, lambda s: s["protocolSection"]["statusModule"].update(overallStatus=42))

    serial, pooled, read = both(server, tmp_path, arrange=arrange)
    assert read == 2
    assert [key for key, _ in serial["errors"]] == [SECOND]
    assert "studies[0].protocolSection.statusModule.overallStatus" in serial["errors"][0][1]
    assert pooled == serial


def test_a_study_whose_id_cannot_be_read_sends_its_page_back_and_is_named_by_its_place(server, tmp_path):
    def arrange() -> None:
        edited(server, SECOND, lambda s: s["protocolSection"]["identificationModule"].update(nctId=42))

    serial, pooled, read = both(server, tmp_path, arrange=arrange)
    assert read == 1, "page 2 read by the monitor itself, page 3 by the workers"
    assert [key for key, _ in serial["errors"]] == ["registry page 2 studies[0]"]
    assert pooled == serial


@pytest.mark.parametrize(
    "fault",
    [
        Fault("/studies", body=b"<html><body>502 Bad Gateway</body></html>", skip=1),
        Fault("/studies", truncate=True, skip=1),
    ],
    ids=["an-error-page", "truncated"],
)
def test_a_page_that_is_not_json_is_asked_again_at_half_the_size_as_the_serial_load_asks(server, tmp_path, fault):
    def arrange() -> None:
        server.faults[:] = [copy.copy(fault)]  # the server counts down a fault's skip and times

    serial, pooled, read = both(server, tmp_path, page_size=2, arrange=arrange)
    sizes = [(q["pageSize"][0], q.get("pageToken", [None])[0]) for _, q in serial["asked"]]
    assert sizes == [("2", None), ("2", "2"), ("1", "2")], "page 2 (one study left) asked again at half the size"
    assert len(serial["versions"]) == 3
    assert read == 1, f"page 2 at its second asking, by the workers: {pooled['asked']}"
    assert pooled == serial


@pytest.mark.parametrize(
    ("hostile", "said"),
    [
        (b'"\\u0000 a NUL"', "NUL"),
        (b'"\\ud800 a lone surrogate"', "surrogate"),
        (b"NaN", "NaN"),
        (b"1" + b"0" * 5000, "digits"),
        (b"[" * 400 + b"]" * 400, "deep"),
    ],
    ids=["nul", "surrogate", "nan", "long-number", "too-deep"],
)
def test_json_the_limits_refuse_stops_the_load_with_the_serial_loads_words(server, tmp_path, hostile, said):
    """The workers' quick check hands such a page back; the monitor's own read refuses it."""
    good = server.studies[SECOND]

    def arrange() -> None:
        server.set_raw(SECOND, good[:-1] + b', "extra": ' + hostile + b"}", server.updates[SECOND])

    serial, pooled, read = both(server, tmp_path, arrange=arrange)
    assert read == 0, "pages 2 and 3: never reached past page 2"
    assert isinstance(serial["outcome"], str) and said.lower() in serial["outcome"].lower(), serial["outcome"]
    assert "/api/v2/studies" in serial["outcome"] and len(serial["versions"]) == 1
    assert pooled == serial
