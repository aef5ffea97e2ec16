"""A hostile registry: a real HTTP server on 127.0.0.1 that misbehaves on purpose
(tests/ctgov_server.py), against the library on SQLite and PostgreSQL.  Each test
checks what was stored afterwards, and that the misbehaviour was bounded: in
requests, in memory, and by the limits (small ones here, so the tests are short)."""

from __future__ import annotations

import copy
import json
import threading
import tracemalloc

import pytest

from monitor.archive import SnapshotArchive
from monitor.errors import SourceError, Stopped
from monitor.limits import MIB, Limits
from monitor.live import Live
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

from conftest import OPENING, UNKNOWN, study
from ctgov_server import Fault, _bomb

LIMITS = Limits(
    max_body_bytes=1 * MIB,
    max_decompressed_bytes=2 * MIB,
    request_deadline_seconds=1.0,
    max_retry_after_seconds=5.0,
    max_pages=20,
)
ALL = ("NCT06821503", "NCT06302556", "NCT06387628")
FOREIGN = "NCT09999999"


def foreign_study() -> dict:
    record = study(UNKNOWN / "2026-02-02.json")
    record["protocolSection"]["identificationModule"]["nctId"] = FOREIGN
    return record


@pytest.fixture
def live(server, store_url, tmp_path, sleeps):
    client = CtgovClient(
        server.url,
        politeness=Politeness(rate=0, retries=1, backoff=0.01, timeout=30),
        sleep=sleeps,
        jitter=lambda: 1.0,
        limits=LIMITS,
    )
    live = Live(Store.open(store_url), client, SnapshotArchive(tmp_path / "snapshots"))
    yield live
    client.close()
    live.store.close()


def errors(live: Live) -> dict[str, str]:
    return {key: message for key, message, _ in live.store.watches.trial_errors()}


# --- the registry answers what was asked, or it is a problem --------------------------------------


def test_a_record_of_another_trial_than_the_one_asked_for_is_not_stored(live, server):
    server.impostors["NCT06302556"] = foreign_study()
    report = live.fetch(["NCT06302556"])
    assert report.results == []
    assert live.store.versions.counts()["versions"] == 0
    assert live.archive.files(FOREIGN) == [], "not even archived"
    assert errors(live) == {
        FOREIGN: "ClinicalTrials.gov answered this trial when asked for NCT06302556; not stored",
        "NCT06302556": f"ClinicalTrials.gov answered {FOREIGN} instead of this trial; not stored",
    }
    assert len(report.problems) == 2
    assert live.fetch(["NCT06302556"]).problems == [], "each problem is reported once"


def test_a_page_with_one_trial_too_many_stores_the_trials_asked_for_and_not_the_extra_one(live, server):
    server.extra.append(foreign_study())
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == sorted(ALL)
    assert live.store.versions.latest_head(FOREIGN) is None
    assert list(errors(live)) == [FOREIGN]
    assert report.problems == [
        f"{FOREIGN}: ClinicalTrials.gov answered this trial when asked for {', '.join(ALL)}; not stored"
    ]


def test_the_same_trial_twice_in_one_answer_is_stored_once_or_is_a_problem_when_the_copies_differ(live, server):
    server.extra.append(study(OPENING / "2026-02-10.json"))  # served already: an identical copy
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == sorted(ALL) and report.problems == []
    other = study(OPENING / "2026-02-10.json")
    other["protocolSection"]["statusModule"]["overallStatus"] = "WITHDRAWN"
    server.extra[:] = [other]
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == ["NCT06302556", "NCT06387628"]
    assert report.problems == [
        "NCT06821503: ClinicalTrials.gov answered 2 different records of this trial at once; none stored"
    ]
    assert [v.record.overall_status for v in live.store.versions.history("NCT06821503")] == ["NOT_YET_RECRUITING"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s["protocolSection"].update(statusModule="RECRUITING"),
        lambda s: s["protocolSection"].update(designModule=[1]),
        lambda s: s["protocolSection"].update(conditionsModule="lupus"),
        lambda s: s["protocolSection"]["identificationModule"].pop("nctId"),
        lambda s: s.clear(),
    ],
    ids=["status_module_a_string", "design_module_a_list", "conditions_a_string", "no_nct_id", "empty_object"],
)
def test_a_malformed_record_in_a_batch_does_not_stop_the_others(live, server, damage):
    bad = study(UNKNOWN / "2026-02-02.json")
    damage(bad)
    server.set_raw("NCT06302556", json.dumps(bad).encode(), "2026-02-02")
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == ["NCT06387628", "NCT06821503"]
    assert live.store.versions.latest_head("NCT06302556") is None
    assert list(errors(live)) == ["NCT06302556"]
    assert report.problems and report.problems[0].startswith("NCT06302556: ")


def test_an_unexpected_exception_for_one_trial_is_its_problem_alone(live, server, monkeypatch):
    import monitor.checking

    real = monitor.checking.ingest

    def ingest(store, snapshot, *args, **kwargs):
        if snapshot.record.key == "NCT06302556":
            raise KeyError("boom")
        return real(store, snapshot, *args, **kwargs)

    monkeypatch.setattr(monitor.checking, "ingest", ingest)
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == ["NCT06387628", "NCT06821503"]
    assert errors(live) == {"NCT06302556": "unexpected error (KeyError: 'boom'); not stored, see the log"}


# --- bounded networking ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["loop", "endless"])
def test_a_next_page_token_that_never_ends_is_refused_within_the_page_limit(live, server, mode):
    for key in ALL:
        live.store.watches.add_watch("trial", key, live.now())
    server.paging = mode
    report = live.cycle()
    assert not report.complete
    assert live.store.versions.counts()["versions"] == 0
    expected = "twice: its paging loops" if mode == "loop" else "after 20 pages (limits.max_pages)"
    assert expected in report.problems[-1]
    assert server.count("/api/v2/studies") == (2 if mode == "loop" else LIMITS.max_pages)


def test_an_empty_next_page_token_is_refused_not_taken_for_the_last_page(live, server):
    """The registry leaves the token out on its last page; an empty one is a page of the wrong
    shape (taken for "the last", the trials on the pages after it would go unread, silently)."""
    for key in ALL:
        live.store.watches.add_watch("trial", key, live.now())
    server.paging = "empty"
    report = live.cycle()
    assert not report.complete
    assert "nextPageToken is '' (expected a non-empty string, or none on the last page); refused" in report.problems[-1]
    assert live.store.versions.counts()["versions"] == 0


@pytest.mark.parametrize(("module", "shape"), [("ctgov_changes", "ChangesPage"), ("ctgov_load", "StudiesPage")])
def test_a_change_or_registry_page_with_an_empty_next_page_token_is_refused(module, shape):
    from importlib import import_module

    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="nextPageToken"):
        page = getattr(import_module(f"monitor.sources.{module}"), shape)
        page.model_validate({"studies": [], "nextPageToken": ""}, strict=True)


@pytest.mark.parametrize(
    "fault",
    [Fault("/api/v2/studies", status=200, drip=2.0, times=9), Fault("/api/v2/studies", status=200, hang=True, times=9)],
    ids=["a_body_dripping_a_byte_every_2_s", "a_server_that_never_answers"],
)
def test_a_request_ends_at_its_whole_deadline(live, server, fault):
    server.faults.append(copy.copy(fault))
    with pytest.raises(SourceError) as refused:
        live.fetch(["NCT06821503"])
    assert refused.value.message.endswith("after 2 tries: no complete answer within 1 s (the whole request's deadline)")
    assert live.store.versions.counts()["versions"] == 0


def test_a_huge_retry_after_is_capped(live, server, sleeps, caplog):
    server.faults.append(Fault("/api/v2/studies", status=429, retry_after="1000000000"))
    report = live.fetch(["NCT06821503"])
    assert [r.status for r in report.results] == ["new"]
    assert sleeps == [LIMITS.max_retry_after_seconds]
    assert "asked us to wait 1e+09 s; waiting 5 s (limits.max_retry_after_seconds)" in caplog.text


@pytest.mark.parametrize(
    ("fault", "refusal"),
    [
        (
            Fault("/api/v2/studies", oversize=200 * MIB, times=9),
            "the answer is larger than the 1,048,576-byte limit (limits.max_body_bytes); refused",
        ),
        (
            Fault("/api/v2/studies", gzip_bomb=100 * MIB, times=9),
            "the answer decompresses to more than the 2,097,152-byte limit (limits.max_decompressed_bytes); refused",
        ),
        (
            Fault("/api/v2/studies", body=b" " * (2 * MIB), times=9),
            "the answer is larger (2,097,152 bytes) than the 1,048,576-byte limit (limits.max_body_bytes); refused",
        ),
    ],
    ids=["an_endless_body", "a_gzip_bomb", "a_declared_oversize_body"],
)
def test_an_oversize_answer_is_refused_at_the_cap_in_bounded_memory(live, server, fault, refusal):
    if fault.gzip_bomb:
        _bomb(fault.gzip_bomb)  # compressed before measuring: the server shares this process
    server.faults.append(copy.copy(fault))
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as refused:
            live.fetch(["NCT06821503"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.message.endswith(refusal)
    assert server.count("/api/v2/studies") == 1, "an oversize answer is not asked for again"
    assert peak < 12 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert live.store.versions.counts()["versions"] == 0


def test_a_gzip_answer_within_the_limits_is_read(live, server):
    server.faults.append(Fault("/api/v2/studies", status=200, gzip=True))
    assert [r.status for r in live.fetch(["NCT06821503"]).results] == ["new"]


def test_a_base_url_without_v2_is_named_as_such(server):
    client = CtgovClient(server.root, politeness=Politeness(rate=0, retries=0))
    message = f"{server.root}: not a ClinicalTrials.gov API v2 base URL (GET /version answered 404); it usually ends in /api/v2"
    for call in (client.data_timestamp, lambda: client.study("NCT06821503"), lambda: list(client.studies(ALL))):
        with pytest.raises(SourceError) as refused:
            call()
        assert refused.value.message == message
    client.close()


# --- a stop ends every wait and request --------------------------------------------------------------


def stopped_within_bounds(client: CtgovClient) -> BaseException | None:
    """Fetch in a thread; what it raised, or None if it is still running 30 s later."""
    raised: list[BaseException] = []

    def fetch() -> None:
        try:
            list(client.studies(["NCT06821503"]))
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(30)
    return raised[0] if raised else None


@pytest.mark.parametrize(
    "fault",
    [
        Fault("/api/v2/studies", status=200, hang=True, times=9),
        Fault("/api/v2/studies", status=200, drip=2.0, times=9),
        Fault("/api/v2/studies", status=429, retry_after="1000000000", times=9),
    ],
    ids=["hanging", "dripping", "retry_after_1e9"],
)
def test_a_stop_interrupts_requests_and_waits(server, fault):
    server.faults.append(copy.copy(fault))
    asked = iter(range(10**6))
    client = CtgovClient(  # told to stop on its 6th look, well into the wait or request
        server.url, politeness=Politeness(rate=0, retries=5, timeout=600), should_stop=lambda: next(asked) >= 5
    )
    raised = stopped_within_bounds(client)
    client.close()
    assert isinstance(raised, Stopped), raised


def _with_title(title_json: str) -> bytes:
    """The trial's record with its title replaced by raw JSON text (what json.dumps would not write)."""
    text = json.dumps(study(UNKNOWN / "2026-02-02.json"))
    return text.replace('"briefTitle": "', f'"briefTitle": {title_json}, "was": "', 1).encode()


@pytest.mark.parametrize(
    "body, says",
    [
        (_with_title('"a \\u0000 title"'), "a text with a NUL character"),
        (_with_title("NaN"), "NaN is not a JSON number"),
        (_with_title('"\\ud800"'), "a lone surrogate"),
        (_with_title("1" * 5001), "a number of thousands of digits"),
        (_with_title("[" * 5000 + "]" * 5000), "JSON nested more than 64 levels deep"),
        (_with_title('"\xff"').replace(b"\xc3\xbf", b"\xff"), "not UTF-8"),
    ],
    ids=["nul", "nan", "lone_surrogate", "huge_number", "deep_nesting", "not_utf8"],
)
def test_a_record_the_bounded_decoder_refuses_is_that_trials_problem_alone(live, server, body, says):
    server.set_raw("NCT06302556", body, "2026-02-02")
    report = live.fetch(list(ALL))
    assert sorted(r.key for r in report.results) == ["NCT06387628", "NCT06821503"]
    assert live.store.versions.latest_head("NCT06302556") is None
    problem = errors(live)["NCT06302556"]
    assert problem.startswith(f"{server.url}/studies?filter.ids=NCT06302556") and says in problem, problem
    assert problem.endswith("; not stored")
    assert server.count("/studies") <= 1 + 2 * 2, "the bad record is found by halving the batch"
