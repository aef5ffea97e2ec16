"""The whole registry followed by the service (a watch group with ``all: true``): the first load
in bounded slices across cycles, SIGTERM part-way and the resume, a stale resume token, the
configuration's errors, and what ``monitor status`` says."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_daemon import Daemon

from monitor.clock import SetClock
from monitor.errors import SourceError
from monitor.live import CycleReport, Live
from monitor.live_registry import PAGES, TOKEN, TRIALS, load_registry
from monitor.sources.ctgov import CtgovClient, Politeness
from monitor.store import Store

from conftest import OPENING, ROOT, study
from ctgov_server import Fault

ALL = ["NCT06302556", "NCT06387628", "NCT06821503"]  # the server's three trials, in its listing order


def registry_config(path: Path, server_url: str, extra: str = "") -> Path:
    path.write_text(f"""
database: sqlite:///{path.parent / "monitor.db"}
ctgov:
  base_url: {server_url}
  rate: 0
  retries: 1
  timeout: 5
  load_pages_per_cycle: 1
  load_page_size: 1
schedule: 1s
daemon:
  shutdown_timeout_seconds: 4
expected: {{completion_grace_days: 100000, verification_days: 100000}}
watches:
  - name: registry
    all: true
{extra}""")
    return path


def stored(db: Path) -> list[tuple[str, int]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute("SELECT trial_key, count(*) FROM versions GROUP BY trial_key ORDER BY 1").fetchall()
        except sqlite3.OperationalError:
            return []


def state(db: Path, key: str) -> str | None:
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute("SELECT value FROM source_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def status(config: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_service_loads_the_whole_registry_in_slices_stops_on_sigterm_mid_load_and_resumes(server, tmp_path):
    config = registry_config(tmp_path / "monitor.yaml", server.url)
    db = tmp_path / "monitor.db"
    server.faults.append(Fault("/studies", hang=True, skip=1))  # the second page never comes
    daemon = Daemon(config, "-v")
    try:
        daemon.wait_for(lambda: server.count("/studies") >= 2, "the second page asked for")
        assert stored(db) == [("NCT06302556", 1)]
        assert "cycle group=registry probed=1 fetched=1 new=1" in daemon.text()
        assert "plan=load loading=1" in daemon.text(), "a slice of one page, and the next one at once"
    finally:
        code = daemon.stop()
    assert code == 0, daemon.text()
    assert "daemon stopped" in daemon.text()
    assert (state(db, TOKEN), state(db, PAGES), state(db, TRIALS)) == ("1", "1", "1")
    partway = status(config)["registry"]
    assert partway["loaded"] is False and (partway["pages"], partway["trials"]) == (1, 1)
    text = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "status"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert "registry        loading: 1 pages, 1 trials read; resumes at the next page" in text
    assert "trials          the whole registry watched, 1 stored" in text, "not \"0 watched\""

    server.requests.clear()
    daemon = Daemon(config, "-v")
    try:
        daemon.wait_for(lambda: state(db, "ctgov.loaded_at"), "the load finished")
        first = next(params for path, params in server.requests if path == "/api/v2/studies")
        assert first.get("pageToken") == ["1"], "the load resumes at the page it stopped in"
        assert stored(db) == [(key, 1) for key in ALL]
        assert "resumed at page 2, 1 trials read" in daemon.text()
        done = status(config)["registry"]
        assert done["loaded"] and (done["pages"], done["trials"]) == (3, 3)
        assert done["watermark"] == "2025-02-17"
        server.set_study(study(OPENING / "2026-03-10.json"))  # a change after the load
        daemon.wait_for(lambda: ("NCT06821503", 2) in stored(db), "the change found by the change query")
        assert "plan=changes" in daemon.text()
        assert not any("filter.ids" in q and len(q["filter.ids"][0]) > 11 for _, q in server.requests)
    finally:
        code = daemon.stop()
    assert code == 0, daemon.text()
    assert "no watch group of the configuration" not in daemon.text()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"



@pytest.fixture
def live(server, tmp_path):
    client = CtgovClient(server.url, politeness=Politeness(rate=0, retries=0, timeout=2), sleep=lambda s: None)
    live = Live(Store.open(f"sqlite:///{tmp_path / 'monitor.db'}"), client, now=SetClock("2026-02-11T12:00:00"))
    live.store.watches.add_watch("registry", "all", live.now())
    yield live
    client.close()
    live.store.close()


def test_a_stale_resume_token_restarts_the_load_from_the_first_page_with_one_log_line(live, server, caplog):
    live.store.service.set_states({TOKEN: "expired-token", PAGES: "40", TRIALS: "8000"})
    with caplog.at_level("WARNING"):
        finished, mark = load_registry(live, CycleReport(), page_size=1)
    assert finished and mark == "2025-02-17"
    warned = [r.getMessage() for r in caplog.records if "page token" in r.getMessage()]
    assert len(warned) == 1 and "refused the stored page token 'expired-token'" in warned[0]
    assert "starts again from its first page" in warned[0]
    asked = [q.get("pageToken") for p, q in server.requests if p == "/api/v2/studies"]
    assert asked == [["expired-token"], None, ["1"], ["2"]]
    assert sorted(live.store.versions.latest_heads()) == ALL
    assert (live.store.service.get_state(PAGES), live.store.service.get_state(TRIALS)) == ("3", "3"), "counted again from the start"


def test_a_registry_that_refuses_every_page_token_fails_once_instead_of_restarting_forever(live, server):
    live.store.service.set_state(TOKEN, "1")
    server.tokens_expire = True
    with pytest.raises(SourceError, match="HTTP 400"):
        load_registry(live, CycleReport(), page_size=1)
    asked = [q.get("pageToken") for p, q in server.requests if p == "/api/v2/studies"]
    assert asked == [["1"], None, ["1"]], "one restart, then the error"
    assert live.store.service.get_state(TOKEN) == "1", "the first page of the restart was stored; its token kept"


def test_a_cycle_of_the_service_resumes_a_stale_token_instead_of_failing(live, server):
    live.store.service.set_state(TOKEN, "expired-token")
    live.load_page_size, live.load_pages = 1, 10
    report = live.cycle(trials=[], queries=[], registry=True)
    assert report.complete and report.plan == "load" and not report.loading, report.problems
    assert sorted(r.key for r in report.results) == ALL


@pytest.mark.parametrize(
    ("group", "says"),
    [
        ("  - name: everything\n    all: maybe", "watches[0].all: 'maybe' should be true or false"),
        (
            "  - name: everything\n    all: true\n    trials: [NCT06821503]",
            "watches[0].trials: all: true watches every trial already; put trials in a watch group of their own",
        ),
        (
            "  - name: everything\n    all: true\n    queries: ['query.cond=lupus']",
            "watches[0].queries: all: true watches every trial already",
        ),
        (
            "  - name: everything\n    all: true\n    source: files",
            "watches[0].source: the source files cannot watch a whole registry (the source ctgov can)",
        ),
        (
            "  - name: a\n    all: true\n  - name: b\n    all: true",
            "watches[1].all: only one watch group can watch the whole registry (all: true)",
        ),
        ("  - name: nothing", "watches[0]: watches nothing: give it trials, queries or snapshots (or all: true"),
    ],
)
def test_a_wrong_whole_registry_group_is_one_error_with_its_line(tmp_path, group, says, monitor):
    config = tmp_path / "bad.yaml"
    config.write_text(f"ctgov:\n  load_pages_per_cycle: 5\nwatches:\n{group}\n")
    run = monitor("--config", str(config), "config", "check")
    assert run.code == 2
    assert f"{config}:" in run.err and says in run.err, run.err


def test_load_pages_per_cycle_out_of_range_names_its_line(tmp_path, monitor):
    config = tmp_path / "bad.yaml"
    config.write_text("ctgov:\n  load_pages_per_cycle: 0\n")
    run = monitor("--config", str(config), "config", "check")
    assert (
        run.code == 2 and f"{config}:2: ctgov.load_pages_per_cycle: 0 should be a whole number of at least 1" in run.err
    )


def test_the_readme_whole_registry_group_is_valid(tmp_path):
    from monitor.config import load_settings

    blocks = [b.split("```")[0] for b in (ROOT / "README.md").read_text().split("```yaml\n")[1:]]
    path = tmp_path / "whole.yaml"
    path.write_text(next(b for b in blocks if "\n    all: true" in b))
    (group,) = load_settings(str(path)).watches
    assert group.all and group.source == "ctgov" and group.name == "registry"


@pytest.mark.parametrize(
    ("state", "line"),
    [
        ({}, "registry        loading: 0 pages, 0 trials read"),
        (
            {TOKEN: "abc", PAGES: "1140", TRIALS: "228000"},
            "registry        loading: 1,140 pages, 228,000 trials read; resumes at the next page",
        ),
        (
            {TOKEN: "", PAGES: "2850", TRIALS: "570000", "ctgov.loaded_at": "2026-11-23T16:02:11.5+00:00"},
            "registry        loaded 2026-11-23T16:02:11 (2,850 pages, 570,000 trials read); watermark none yet",
        ),
        (
            {
                PAGES: "2850",
                TRIALS: "570000",
                "ctgov.loaded_at": "2026-11-23T16:02:11+00:00",
                "ctgov.watermark": "2026-11-22",
                "ctgov.reconciled": "2026-11-30T10:00:00+00:00 571002",
            },
            "registry        loaded 2026-11-23T16:02:11 (2,850 pages, 570,000 trials read); watermark 2026-11-22; "
            "reconciled 2026-11-30T10:00:00 (571,002 listed)",
        ),
    ],
)
def test_status_shows_the_load_progress_then_the_watermark_and_the_reconciliation(state, line):
    from monitor.live_registry import progress
    from monitor.status import _registry_line

    assert _registry_line(progress(state)) == line


def test_one_malformed_study_in_a_page_of_the_load_is_its_problem_and_the_load_goes_on(live, server):
    bad = json.loads(server.studies["NCT06387628"])
    bad["protocolSection"]["identificationModule"]["briefTitle"] = 12345
    server.set_raw("NCT06387628", json.dumps(bad).encode(), server.updates["NCT06387628"])
    report = CycleReport()
    finished, _ = load_registry(live, report, page_size=3)
    assert finished, "one bad record does not hold the whole registry's load back forever"
    assert sorted(live.store.versions.latest_heads()) == ["NCT06302556", "NCT06821503"], "the bad one not stored"
    said = "studies[1].protocolSection.identificationModule.briefTitle: expected a string, got the number 12345"
    assert [p for p in report.problems if p.startswith("NCT06387628: ")] and said in report.problems[0]
    assert [key for key, _, _ in live.store.watches.trial_errors()] == ["NCT06387628"]
    assert not any("not found" in p for p in report.problems), "listed, so not taken for deleted"
