"""Expected events through the daemon: a trial crossing its completion date is
told once by e-mail (a real SMTP server on 127.0.0.1), never again while it
stays true, and once more, as resolved, when its status changes."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.daemon import run_once
from monitor.settings import Settings
from monitor.store import Store

from conftest import OPENING, study
from receivers import Mailbox


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def configure(tmp_path: Path, store_url: str, mailbox: Mailbox, folder: Path, verification_days: int = 3650) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: {store_url}
expected:
  verification_days: {verification_days}     # 3650: only the completion rule is under test
watches:
  - name: portfolio
    snapshots: [{folder}]
notifications:
  routes:
    - name: analyst
      urls: ["{mailbox.url()}"]
      categories: [expected]
""")
    return path


def test_a_trial_crossing_its_completion_date_is_told_once_and_resolved_once(tmp_path, store_url, mailbox):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    recruiting = study(OPENING / "2026-03-10.json")  # RECRUITING, primary completion 2027-12 (ESTIMATED)
    (folder / "recruiting.json").write_text(json.dumps(recruiting))
    settings = load_settings(str(configure(tmp_path, store_url, mailbox, folder)))
    store = Store.open(settings.database)
    clock = Clock(datetime(2027, 12, 20, 7, 0, tzinfo=UTC))

    run_once(store, settings, clock)
    assert mailbox.messages == [], "the completion date has not passed yet"
    assert store.expected.expected_seen() == {"NCT06821503"}, "this first evaluation is the baseline, with nothing true"

    clock.now = datetime(2028, 2, 10, 7, 0, tzinfo=UTC)  # 41 days after 2027-12-31
    (outcome,) = run_once(store, settings, clock)
    assert [(key, c.field) for key, c in outcome.expected] == [("NCT06821503", "completion-passed")]
    assert len(mailbox.messages) == 1
    assert "Primary completion 2027-12 passed 41 days ago; still RECRUITING" in mailbox.texts()[0]
    assert "Materiality: medium (expected)" in mailbox.texts()[0], "the message names its materiality and rule"

    clock.now = datetime(2028, 2, 11, 7, 0, tzinfo=UTC)
    (outcome,) = run_once(store, settings, clock)
    assert outcome.expected == [] and len(mailbox.messages) == 1, "still true: nothing new"

    completed = completed_on(recruiting, "2028-01-15")
    completed["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2028-02-12", "type": "ACTUAL"}
    (folder / "completed.json").write_text(json.dumps(completed))
    clock.now = datetime(2028, 2, 12, 7, 0, tzinfo=UTC)
    (outcome,) = run_once(store, settings, clock)
    assert [(c.field, c.change.value) for _, c in outcome.expected] == [("completion-passed", "removed")]
    assert len(mailbox.messages) == 2
    assert "Resolved (completion-passed), now COMPLETED" in mailbox.texts()[1]
    assert "Materiality: low (resolved)" in mailbox.texts()[1]

    clock.now = datetime(2028, 2, 13, 7, 0, tzinfo=UTC)
    run_once(store, settings, clock)
    assert len(mailbox.messages) == 2
    assert store.expected.expected_true() == {}
    store.close()


def test_a_first_cycle_over_overdue_trials_is_a_silent_baseline_and_a_later_crossing_is_told_once(
    tmp_path, store_url, mailbox
):
    from conftest import UNKNOWN

    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / "opening.json").write_text(json.dumps(study(OPENING / "2026-03-10.json")))  # verified 2025-12
    (folder / "unknown.json").write_text(json.dumps(study(UNKNOWN / "2026-02-02.json")))  # verified 2024-02
    settings = load_settings(str(configure(tmp_path, store_url, mailbox, folder, verification_days=800)))
    store = Store.open(settings.database)
    clock = Clock(datetime(2028, 2, 10, 7, 0, tzinfo=UTC))  # both completions long passed

    outcomes = run_once(store, settings, clock)
    assert [o.expected for o in outcomes] == [[]] and mailbox.messages == [], "a baseline is not news"
    assert sorted(store.expected.expected_true()) == [
        ("NCT06302556", "completion-passed"),
        ("NCT06302556", "verification-stale"),
        ("NCT06821503", "completion-passed"),
    ], "the baseline is stored: monitor check and the portfolio show it"

    clock.now = datetime(2028, 3, 15, 7, 0, tzinfo=UTC)  # 805 days after 2025-12-31: NCT06821503 goes stale
    (outcome,) = run_once(store, settings, clock)
    assert [(key, c.field) for key, c in outcome.expected] == [("NCT06821503", "verification-stale")]
    assert len(mailbox.messages) == 1
    assert "Status last verified 2025-12 (805 days ago); still RECRUITING" in mailbox.texts()[0]

    clock.now = datetime(2028, 3, 16, 7, 0, tzinfo=UTC)
    run_once(store, settings, clock)
    assert len(mailbox.messages) == 1
    store.close()


def test_monitor_check_lists_what_is_true_now_and_stores_nothing(monitor, db_path):
    from conftest import UNKNOWN

    assert monitor("load", OPENING / "2026-03-10.json", UNKNOWN / "2026-02-02.json").code == 0
    before = db_path.read_bytes()
    run = monitor("check", "--today", "2026-03-12")
    assert (run.code, run.out) == (
        0,
        "completion-passed (1)\n"
        "  NCT06302556  Primary completion 2026-01 passed 40 days ago; still NOT_YET_RECRUITING\n"
        "verification-stale (1)\n"
        "  NCT06302556  Status last verified 2024-02 (742 days ago); still NOT_YET_RECRUITING\n",
    )
    run = monitor("check", "--today", "2028-03-01", "--rule", "verification-stale", "--format", "json", "--exit-code")
    assert run.code == 1
    assert [(f["trial"], f["rule"]) for f in json.loads(run.out)["flags"]] == [
        ("NCT06302556", "verification-stale"),
        ("NCT06821503", "verification-stale"),
    ]
    assert monitor("check", "--today", "2025-06-01").out == "No expected-event rule is true on 2025-06-01.\n"
    bad = monitor("check", "--today", "someday")
    assert bad.code == 2 and "'someday' is not a date (YYYY-MM-DD)" in bad.err
    assert db_path.read_bytes() == before, "check stores nothing"


def test_a_trial_whose_rules_fail_is_recorded_and_the_others_still_get_their_events(tmp_path, monkeypatch):
    import monitor.expected_events as portfolio
    from monitor.expected_events import record_expected
    from monitor.pipeline import load

    from conftest import UNKNOWN

    store = Store.open(str(tmp_path / "monitor.db"))
    clock = Clock(datetime(2026, 3, 12, tzinfo=UTC))
    load(store, [OPENING / "2026-03-10.json", UNKNOWN / "2026-02-02.json"], clock)
    real = portfolio.evaluate

    def broken(record, today, thresholds=None):
        if record.key == "NCT06821503":
            raise KeyError("boom")
        return real(record, today, thresholds)

    assert record_expected(store, ["NCT06821503", "NCT06302556"], datetime(2025, 1, 1, tzinfo=UTC)) == []  # baseline
    monkeypatch.setattr(portfolio, "evaluate", broken)
    events = record_expected(store, ["NCT06821503", "NCT06302556"], clock.now)
    assert {(key, c.field) for key, c in events} == {
        ("NCT06302556", "completion-passed"),
        ("NCT06302556", "verification-stale"),
    }
    assert [key for key, _, _ in store.watches.trial_errors()] == ["NCT06821503"]
    store.close()


def test_monitor_status_counts_the_trials_each_rule_flags_from_the_stored_state(monitor, db_path):
    from monitor.expected_events import record_expected

    from conftest import UNKNOWN

    assert monitor("load", OPENING / "2026-03-10.json", UNKNOWN / "2026-02-02.json").code == 0
    line = [ln for ln in monitor("status").out.splitlines() if ln.startswith("expected")]
    assert line == ["expected        not evaluated yet (the service evaluates the rules after each cycle)"]

    store = Store.open(str(db_path))
    record_expected(store, ["NCT06821503", "NCT06302556"], datetime(2026, 3, 12, tzinfo=UTC))
    store.close()
    run = monitor("status")
    assert [ln for ln in run.out.splitlines() if ln.startswith("expected")] == [
        "expected        completion-passed 1, results-overdue 0, verification-stale 1, inconsistent 0"
        " (of 2 trials evaluated)"
    ]
    report = json.loads(monitor("status", "--format", "json").out)
    assert report["expected"] == {
        "trials_evaluated": 2,
        "flagged": {"completion-passed": 1, "results-overdue": 0, "verification-stale": 1, "inconsistent": 0},
    }


def test_check_in_markdown_escapes_what_a_finding_quotes():
    from datetime import date

    from monitor.expected_events import Flag, render_flags

    flag = Flag(
        "NCT01234567", "t", "RECRUITING", "inconsistent", "x | <!here> [a](http://evil.example) \\ @channel\nend"
    )
    table = render_flags([flag], date(2026, 3, 12), "markdown")
    row = table.splitlines()[-1]
    assert row == (
        "| NCT01234567 | RECRUITING | x \\| \\<!here\\> \\[a\\](http://evil.example) \\\\ @\u200bchannel end |"
    )


def test_a_headline_names_the_expected_event_in_words():
    from monitor.expected import RULES
    from monitor.messages import _EXPECTED_WORDS, headline
    from monitor.store.expected import fired, resolved

    assert set(_EXPECTED_WORDS) == set(RULES), "every rule has its words"
    assert headline([fired("results-overdue", "Results not posted 30 days after the deadline")]) == "results overdue"
    assert headline([resolved("completion-passed", "was", "COMPLETED"), fired("inconsistent", "why")]) == (
        "primary completion passed resolved; record inconsistent"
    )


@dataclass
class Watching:
    """One recruiting trial (primary completion 2027-12) watched from a folder; ``read``: the trials
    whose latest record the rules read, in order."""

    folder: Path
    db: str
    settings: Settings
    store: Store
    read: list[str]
    clock: Clock


@pytest.fixture
def watching(tmp_path, mailbox, monkeypatch):
    from monitor.store.expected import ExpectedStore

    folder = tmp_path / "snapshots"
    folder.mkdir()
    (folder / "recruiting.json").write_text(json.dumps(study(OPENING / "2026-03-10.json")))
    db = f"sqlite:///{tmp_path / 'm.db'}"
    settings = load_settings(str(configure(tmp_path, db, mailbox, folder)))
    read: list[str] = []
    latest_records = ExpectedStore.latest_records
    monkeypatch.setattr(
        ExpectedStore, "latest_records", lambda self, keys: (read.extend(keys), latest_records(self, keys))[1]
    )
    store = Store.open(settings.database)
    yield Watching(folder, db, settings, store, read, Clock(datetime(2027, 12, 20, 7, 0, tzinfo=UTC)))
    store.close()


def test_the_rules_read_the_trials_due_once_a_day_and_otherwise_only_what_the_cycle_stored(watching):
    store, settings, read, clock = watching.store, watching.settings, watching.read, watching.clock
    run_once(store, settings, clock)
    assert read == ["NCT06821503"], "the first cycle stores the trial and evaluates it"
    clock.now = datetime(2027, 12, 20, 9, 0, tzinfo=UTC)
    read.clear()
    run_once(store, settings, clock)
    assert read == [], "the same day, an unchanged cycle reads no record"
    clock.now = datetime(2027, 12, 21, 7, 0, tzinfo=UTC)  # a new day, but none on which a rule can turn
    run_once(store, settings, clock)
    assert read == [], "a new day reads only the trials due: none (primary completion 2027-12 + 30 days)"
    clock.now = datetime(2028, 2, 10, 7, 0, tzinfo=UTC)  # a new day: the completion date has passed
    (outcome,) = run_once(store, settings, clock)
    assert read == ["NCT06821503"] and [e.field for _, e in outcome.expected] == ["completion-passed"]


def test_a_trial_is_due_the_day_its_rules_can_turn_and_every_trial_once_when_the_rules_settings_change(
    watching, tmp_path, mailbox
):
    from datetime import date

    store, read, clock = watching.store, watching.read, watching.clock
    run_once(store, watching.settings, clock)
    assert store.expected.due_keys(date(2028, 1, 30)) == set()
    assert store.expected.due_keys(date(2028, 1, 31)) == {"NCT06821503"}, "2027-12-31 + 30 days of grace"
    read.clear()
    clock.now = datetime(2027, 12, 22, 7, 0, tzinfo=UTC)
    changed = load_settings(str(configure(tmp_path, watching.db, mailbox, watching.folder, verification_days=3000)))
    run_once(store, changed, clock)
    assert read == ["NCT06821503"], "the rules' settings changed: every trial is evaluated once more"
    read.clear()
    clock.now = datetime(2027, 12, 23, 7, 0, tzinfo=UTC)
    run_once(store, changed, clock)
    assert read == [], "and then only when due again"


def test_a_trial_stored_outside_a_cycle_is_evaluated_by_the_next_cycle_of_its_group_the_same_day(watching):
    from monitor.pipeline import load

    store, settings, read, clock = watching.store, watching.settings, watching.read, watching.clock
    run_once(store, settings, clock)
    other = watching.folder / "unknown.json"
    other.write_text(json.dumps(study(OPENING.parent / "NCT06302556" / "2026-03-02.json")))
    load(store, [other], clock)  # as `monitor load` stores it: no rule evaluated
    read.clear()
    clock.now = datetime(2027, 12, 20, 9, 0, tzinfo=UTC)
    run_once(store, settings, clock)
    assert read == ["NCT06302556"], "stored but never evaluated: evaluated now, and only it"
    assert store.expected.expected_seen() == {"NCT06821503", "NCT06302556"}


def test_a_new_version_stored_outside_a_cycle_is_evaluated_by_the_next_cycle_though_not_due(watching):
    from monitor.pipeline import load

    store, settings, read, clock = watching.store, watching.settings, watching.read, watching.clock
    run_once(store, settings, clock)  # recruiting, primary completion 2027-12: due 2028-01-31
    moved = study(OPENING / "2026-03-10.json")
    status = moved["protocolSection"]["statusModule"]
    status["primaryCompletionDateStruct"] = {"date": "2027-10", "type": "ESTIMATED"}  # passed, grace too
    status["lastUpdatePostDateStruct"] = {"date": "2027-12-19", "type": "ACTUAL"}
    newer = watching.folder / "moved.json"
    newer.write_text(json.dumps(moved))
    load(store, [newer], clock)  # as `monitor load` stores it: no rule evaluated
    read.clear()
    clock.now = datetime(2027, 12, 20, 9, 0, tzinfo=UTC)
    (outcome,) = run_once(store, settings, clock)
    assert read == ["NCT06821503"], "its new version is evaluated by the next cycle, not at its old turning day"
    assert [(key, e.field) for key, e in outcome.expected] == [("NCT06821503", "completion-passed")]


def completed_on(recruiting: dict, day: str) -> dict:
    """A copy of ``recruiting`` COMPLETED on ``day``: both completions and the enrollment ACTUAL."""
    completed = copy.deepcopy(recruiting)
    status = completed["protocolSection"]["statusModule"]
    status["overallStatus"] = "COMPLETED"
    status["primaryCompletionDateStruct"] = {"date": day, "type": "ACTUAL"}
    status["completionDateStruct"] = {"date": day, "type": "ACTUAL"}
    completed["protocolSection"]["designModule"]["enrollmentInfo"]["type"] = "ACTUAL"
    return completed


def completed_then_reopened() -> tuple[dict, dict]:
    """NCT06821503 COMPLETED in 2027-11 (nothing true, no day soon on which a rule turns), and then
    RECRUITING again (posted 2028-02-10) with its primary completion 2027-12 long passed."""
    recruiting = study(OPENING / "2026-03-10.json")  # RECRUITING, primary completion 2027-12 (ESTIMATED)
    completed = completed_on(recruiting, "2027-11-15")
    recruiting["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2028-02-10", "type": "ACTUAL"}
    return completed, recruiting


def test_a_new_version_stored_outside_a_cycle_is_evaluated_by_the_next_cycle_whatever_its_old_day(
    tmp_path, mailbox
):
    """`monitor load` (or `fetch`) stores a new version without the rules; the cycle that follows finds
    the group's file unchanged, stores nothing, and still evaluates it: the old record's turning day
    (a year away, or never) must not hide the new record's rules."""
    from monitor.pipeline import load

    folder = tmp_path / "snapshots"
    folder.mkdir()
    completed, recruiting = completed_then_reopened()
    trial = folder / "trial.json"
    trial.write_text(json.dumps(completed))
    settings = load_settings(str(configure(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", mailbox, folder)))
    store = Store.open(settings.database)
    clock = Clock(datetime(2028, 2, 10, 7, 0, tzinfo=UTC))
    run_once(store, settings, clock)
    assert store.expected.expected_true() == {}, "COMPLETED: nothing true, no day soon on which a rule turns"

    trial.write_text(json.dumps(recruiting))  # the sponsor reopens it: primary completion 2027-12 long passed
    load(store, [trial], clock)  # as `monitor load` stores it: no rule evaluated
    clock.now = datetime(2028, 2, 10, 9, 0, tzinfo=UTC)
    (outcome,) = run_once(store, settings, clock)  # the group's file is the stored version: nothing stored
    assert [(key, c.field) for key, c in outcome.expected] == [("NCT06821503", "completion-passed")]
    assert len(mailbox.messages) == 1
    clock.now = datetime(2028, 2, 11, 7, 0, tzinfo=UTC)
    (outcome,) = run_once(store, settings, clock)
    assert outcome.expected == [] and len(mailbox.messages) == 1, "told once"
    store.close()


def test_a_trial_whose_stored_record_is_damaged_never_stops_the_others_events(tmp_path):
    """One stored version that cannot be unpacked is that trial's problem: the other trials of the
    pass (read in the same chunk) still get their events, and the damaged one stays due."""
    import sqlite3
    from datetime import date

    from monitor.expected_events import record_expected
    from monitor.pipeline import load

    from conftest import UNKNOWN

    store = Store.open(str(tmp_path / "monitor.db"))
    clock = Clock(datetime(2026, 3, 12, tzinfo=UTC))
    load(store, [OPENING / "2026-03-10.json", UNKNOWN / "2026-02-02.json"], clock)
    keys = ["NCT06821503", "NCT06302556"]
    assert record_expected(store, keys, datetime(2025, 1, 1, tzinfo=UTC)) == []  # the baseline: nothing true
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        db.execute("UPDATE versions SET record = X'00' WHERE trial_key = 'NCT06821503'")
    events = record_expected(store, keys, clock.now)
    assert {(key, c.field) for key, c in events} == {
        ("NCT06302556", "completion-passed"),
        ("NCT06302556", "verification-stale"),
    }
    assert [key for key, _, _ in store.watches.trial_errors()] == ["NCT06821503"]
    assert "NCT06821503" in store.expected.due_keys(date(2026, 3, 13)), "still due: evaluated once it is mended"
    store.close()


def test_a_version_stored_while_the_rules_evaluate_the_trial_keeps_it_due(tmp_path, monkeypatch):
    """`monitor load` stores a new version between the rules' read of the trial and the write of its
    next turning day: the day computed from the old record is not kept, the new one waits for the
    next daily pass."""
    from datetime import date

    from monitor.expected_events import record_expected
    from monitor.pipeline import load
    from monitor.store.expected import ExpectedStore

    completed, recruiting = completed_then_reopened()
    old, new = tmp_path / "completed.json", tmp_path / "reopened.json"
    old.write_text(json.dumps(completed))
    new.write_text(json.dumps(recruiting))
    store = Store.open(str(tmp_path / "monitor.db"))
    clock = Clock(datetime(2028, 2, 10, 7, 0, tzinfo=UTC))
    load(store, [old], clock)
    record_expected(store, ["NCT06821503"], clock.now)  # the baseline: nothing true, no day soon
    read = ExpectedStore.latest_records

    def meanwhile(self, keys):  # `monitor load` of a new version right after the rules read the old one
        records = read(self, keys)
        monkeypatch.setattr(ExpectedStore, "latest_records", read)
        load(store, [new], clock)
        return records

    monkeypatch.setattr(ExpectedStore, "latest_records", meanwhile)
    record_expected(store, ["NCT06821503"], datetime(2028, 2, 10, 9, 0, tzinfo=UTC))
    assert "NCT06821503" in store.expected.due_keys(date(2028, 2, 11)), "the new version waits for the daily pass"
    store.close()
