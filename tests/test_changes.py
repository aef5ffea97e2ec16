"""`monitor changes` and `monitor watch list` over a store loaded from the real versions: every filter,
every format, the CSV header, and backfilled history left out unless asked."""

from __future__ import annotations

import csv
import io
import json

import pytest
from portfolio_store import BACKFILLED, build, now

from monitor.cli import main
from monitor.config import load_settings
from monitor.feed import CHANGE_COLUMNS, TRIAL_COLUMNS
from monitor.portfolio import ChangeFilter, changes

from conftest import SHARED, needs_shared

pytestmark = needs_shared


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portfolio")
    store = build(folder / "monitor.db")
    config = folder / "monitor.yaml"
    config.write_text(
        "watches:\n"
        "  - name: opening\n    trials: [NCT06821503, NCT07268053]\n"
        f"  - name: folder\n    snapshots: [{SHARED / 'versions' / 'NCT05537740'}]\n"
    )
    yield store, config, folder / "monitor.db"
    store.close()


@pytest.fixture
def changes_cli(portfolio, capsys):
    _, config, db = portfolio

    def run(*args):
        code = main(["--config", str(config), "--db", str(db), *map(str, args)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def feed(changes_cli, *args) -> list[dict]:
    code, out, err = changes_cli("changes", "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_changes_are_listed_newest_first_with_trial_title_dates_category_severity_summary(changes_cli):
    items = feed(changes_cli)
    assert len(items) == 827  # every stored change of the real versions (country changes and postal codes included)
    detected = [i["detected_at"] for i in items]
    assert detected == sorted(detected, reverse=True)
    first = items[0]
    assert (first["trial"], first["registry_date"], first["detected_at"]) == (
        "NCT06989112",
        "2026-03-12",
        "2026-03-12T12:00:00+00:00",
    )
    assert list(first) == list(CHANGE_COLUMNS)


def test_backfilled_history_is_left_out_unless_asked(changes_cli):
    assert not [i for i in feed(changes_cli) if i["backfill"]]
    with_history = feed(changes_cli, "--include-backfill", "--trial", BACKFILLED)
    backfilled = [i for i in with_history if i["backfill"]]
    assert len(backfilled) == 4 and {i["version"] for i in backfilled} == {2, 3}
    assert len(with_history) == len(feed(changes_cli, "--trial", BACKFILLED)) + 4


def test_backfilled_changes_are_not_counted_as_changes_in_24_hours(portfolio, changes_cli):
    store, _, _ = portfolio
    from datetime import datetime

    since = "2026-03-11T00:00:00+00:00"
    assert len(feed(changes_cli, "--since", since, "--include-backfill")) == len(feed(changes_cli, "--since", since)) + 4
    total, _ = store.versions.changes_since(datetime.fromisoformat(since))
    assert total == len(feed(changes_cli, "--since", since)), "the 4 backfilled changes of 2026-03-11 are not counted"


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (["--since", "2026-03-09"], lambda i: i["detected_at"] >= "2026-03-09"),
        (["--until", "2026-02-10"], lambda i: i["detected_at"] < "2026-02-10"),
        (["--since", "2026-02-20", "--until", "2026-02-28"], lambda i: "2026-02-20" <= i["detected_at"] < "2026-02-28"),
        (["--trial", "NCT06821503", "--trial", "nct07268053"], lambda i: i["trial"] in ("NCT06821503", "NCT07268053")),
        (["--watch", "opening"], lambda i: i["trial"] in ("NCT06821503", "NCT07268053")),
        (["--watch", "folder"], lambda i: i["trial"] == "NCT05537740"),
        (["--category", "status", "--category", "dates"], lambda i: i["category"] in ("status", "dates")),
        (["--min-severity", "major"], lambda i: i["severity"] == "major"),
    ],
    ids=["since", "until", "since-until", "trials", "watch-group", "snapshot-group", "categories", "min-severity"],
)
def test_each_filter_keeps_exactly_the_changes_it_names(changes_cli, args, check):
    everything = feed(changes_cli)
    kept = feed(changes_cli, *args)
    assert kept, "the filter keeps something from the real data"
    assert kept == [i for i in everything if check(i)]


def test_limit_keeps_the_newest(changes_cli):
    assert feed(changes_cli, "--limit", "5") == feed(changes_cli)[:5]


def test_spans_are_counted_back_from_now(portfolio):
    store, config, _ = portfolio
    found = changes(store, load_settings(str(config)), ChangeFilter(since="2d"), now())
    assert found and {f.detected_at.date().isoformat() for f in found} == {"2026-03-12"}
    week = changes(store, load_settings(str(config)), ChangeFilter(since="1w", min_severity="major"), now())
    assert all(f.change.severity.value == "major" for f in week) and len(week) > len(found) / 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "colour"], "error: unknown category 'colour': one of status, enrollment"),
        (["--watch", "nope"], "error: no watch group named 'nope' (groups: folder, opening)"),
        (["--since", "last tuesday"], "error: --since 'last tuesday' is not a date (2026-03-01)"),
        (["--trial", "NCT123"], "error: NCT123 is not an NCT id"),
        (["--since", "99999999999d"], "error: --since '99999999999d' reaches back before any date"),
        (["--since", "9999999w"], "error: --since '9999999w' reaches back before any date"),
        (["--limit", "0"], "error: --limit 0: give a number from 1 to 1000000000"),
        (["--limit", "99999999999999999999999"], "error: --limit 99999999999999999999999: give a number from 1 to"),
    ],
)
def test_a_bad_filter_is_one_error_line_and_exit_2(changes_cli, args, message):
    code, out, err = changes_cli("changes", *args)
    assert (code, out) == (2, "") and err.startswith(message) and err.count("\n") == 1


def test_csv_has_the_documented_header_and_one_row_per_change(changes_cli):
    code, out, _ = changes_cli("changes", "--format", "csv", "--trial", "NCT06821503")
    assert code == 0
    assert out.splitlines()[0] == ",".join(CHANGE_COLUMNS)
    assert CHANGE_COLUMNS == (
        "detected_at", "trial", "title", "version", "registry_date", "category", "severity", "change", "field",
        "summary", "old", "new", "backfill",
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(feed(changes_cli, "--trial", "NCT06821503")) == 20
    status = next(r for r in rows if r["category"] == "status")
    assert (status["old"], status["new"], status["backfill"]) == ("NOT_YET_RECRUITING", "RECRUITING", "false")


def test_ndjson_is_one_json_object_a_line_equal_to_the_json(changes_cli):
    code, out, _ = changes_cli("changes", "--format", "ndjson", "--category", "status")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == feed(changes_cli, "--category", "status")


def test_text_and_markdown_show_one_line_a_change(changes_cli):
    code, text, _ = changes_cli("changes", "--trial", "NCT06821503", "--category", "status")
    assert code == 0
    assert text.splitlines()[1].split() == [
        "2026-03-10", "NCT06821503", "Clinical", "Study", "Evaluating", "the", "Safety,", "T…", "2026-03-10",
        "major", "status:", "Overall", "status", "NOT_YET_RECRUITING", "->", "RECRUITING",
    ]  # fmt: skip
    code, markdown, _ = changes_cli("changes", "--format", "markdown", "--trial", "NCT06821503", "--category", "status")
    assert markdown.splitlines()[2].startswith("| 2026-03-10 | NCT06821503 | Clinical Study")
    assert "NOT\\_YET\\_RECRUITING" in markdown, "registry text cannot turn into Markdown emphasis"


def test_no_changes_says_so(changes_cli):
    assert changes_cli("changes", "--since", "2027-01-01")[1] == "no changes\n"


def test_watch_list_is_the_portfolio_table(changes_cli):
    code, out, _ = changes_cli("watch", "list", "--format", "json")
    assert code == 0
    rows = {r["trial"]: r for r in json.loads(out)}
    assert len(rows) == 31 and list(rows["NCT06821503"]) == list(TRIAL_COLUMNS)
    opening = rows["NCT06821503"]
    assert (opening["overall_status"], opening["groups"], opening["versions"]) == ("RECRUITING", ["opening"], 2)
    assert opening["last_change_at"] == "2026-03-10T12:00:00+00:00"
    assert opening["last_change"].startswith("20 changes (4 major): Overall status NOT_YET_RECRUITING -> RECRUITING")
    assert rows["NCT05537740"]["groups"] == ["folder"]
    assert rows[BACKFILLED]["versions"] == 4
    text = changes_cli("watch", "list")[1]
    assert text.splitlines()[0].split()[:5] == ["trial", "title", "status", "groups", "versions"]
    assert "nothing is watched" in text
    csv_out = changes_cli("watch", "list", "--format", "csv", "--watch", "opening")[1]
    assert [r["trial"] for r in csv.DictReader(io.StringIO(csv_out))] == ["NCT06821503", "NCT07268053"]


def test_the_text_feed_says_what_monitor_diff_says_while_json_keeps_every_stored_change(changes_cli):
    code, text, _ = changes_cli("changes", "--trial", "NCT07227597", "--category", "outcome_switch")
    assert code == 0
    lines = text.splitlines()[1:]
    assert len(lines) == 1, text
    assert "in 3 outcomes; outcome switch after the ACTUAL start 2026-01-29 (3 primary outcomes)" in lines[0]
    assert len(feed(changes_cli, "--trial", "NCT07227597", "--category", "outcome_switch")) == 3
