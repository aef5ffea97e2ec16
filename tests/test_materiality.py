"""Materiality: each change gets high, medium, low or noise from the rule
table, with the rule's name; the configuration can re-level a rule; routes
select by min_materiality; JSON shows both keys."""

from __future__ import annotations

import json

import pytest

from monitor.classify import diff_records
from monitor.config import Route, load_settings
from monitor.materiality import DEFAULT, Materiality
from monitor.model import Category, Change, ChangeKind, Severity
from monitor.normalize.ctgov import normalize_study
from monitor.routing import Router
from monitor.store.expected import fired, resolved

from conftest import OPENING, UNKNOWN, study


def status(old: str, new: str) -> Change:
    return Change(Category.STATUS, "overall_status", ChangeKind.MODIFIED, old, new, Severity.MAJOR, f"{old} -> {new}")


def enrollment(old: int, new: int) -> Change:
    return Change(
        Category.ENROLLMENT, "enrollment", ChangeKind.MODIFIED, {"count": old}, {"count": new}, Severity.MAJOR, "e"
    )


def completion(old: str, new: str) -> Change:
    return Change(
        Category.DATES,
        "primary_completion_date",
        ChangeKind.MODIFIED,
        {"date": old},
        {"date": new},
        Severity.MAJOR,
        "d",
    )


def site(kind: ChangeKind) -> Change:
    return Change(Category.LOCATIONS, "locations", kind, None, {"facility": "X"}, Severity.MINOR, "Site added: X")


CASES = [
    ("terminated phase 3", status("RECRUITING", "TERMINATED"), ("PHASE3",), ("high", "stopped-phase3")),
    ("suspended phase 2", status("RECRUITING", "SUSPENDED"), ("PHASE2",), ("high", "stopped")),
    ("recruiting", status("NOT_YET_RECRUITING", "RECRUITING"), (), ("medium", "status")),
    ("enrollment cut by half", enrollment(200, 100), (), ("high", "enrollment-cut")),
    ("enrollment cut by 30% exactly", enrollment(100, 70), (), ("medium", "enrollment")),
    ("enrollment raised", enrollment(100, 300), (), ("medium", "enrollment")),
    ("completion slipped 181 days", completion("2026-01-01", "2026-07-01"), (), ("high", "completion-slip")),
    ("completion slipped 2 months", completion("2026-01", "2026-03"), (), ("medium", "dates")),
    ("results overdue fired", fired("results-overdue", "late"), (), ("high", "results-overdue")),
    ("completion passed fired", fired("completion-passed", "late"), (), ("medium", "expected")),
    ("an expected event resolved", resolved("completion-passed", "late", "COMPLETED"), (), ("low", "resolved")),
    ("a site added", site(ChangeKind.ADDED), (), ("low", "site")),
]


@pytest.mark.parametrize(("what", "change", "phases", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_default_table(what, change, phases, expected):
    assert DEFAULT.assess(change, phases) == expected


def test_real_changes_get_their_materiality():
    old, new = normalize_study(study(OPENING / "2026-02-10.json")), normalize_study(study(OPENING / "2026-03-10.json"))
    graded = {(c.summary, DEFAULT.assess(c, new.phases)) for c in diff_records(old, new)}
    assert ("Overall status NOT_YET_RECRUITING -> RECRUITING", ("medium", "status")) in graded
    assert {rule for _, (_, rule) in graded} >= {"status", "dates", "eligibility", "site"}


def test_the_configuration_relevels_a_rule_and_routes_select_by_min_materiality(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text("""
materiality:
  site: noise
  status: high
notifications:
  routes:
    - name: important
      urls: ["json://localhost:1/hook"]
      min_materiality: high
""")
    settings = load_settings(str(path))
    judge = Materiality(settings.materiality)
    assert judge.assess(site(ChangeKind.ADDED)) == ("noise", "site")
    assert judge.assess(status("NOT_YET_RECRUITING", "RECRUITING")) == ("high", "status")
    router = Router(settings.notifications.routes, materiality=judge)
    assert router.routes_for("NCT1", [status("NOT_YET_RECRUITING", "RECRUITING")]) == ["important"]
    assert router.routes_for("NCT1", [site(ChangeKind.ADDED), enrollment(100, 90)]) == []
    plain = Router((Route("all", urls=("json://x",)),))
    assert plain.routes_for("NCT1", [site(ChangeKind.ADDED)]) == ["all"], "without min_materiality, everything"


def test_a_phase3_trial_stopping_reaches_a_route_that_wants_only_that(tmp_path):
    judge = Materiality({"stopped": "medium"})
    route = Route("p3", urls=("json://x",), min_materiality="high")
    router = Router((route,), materiality=judge, phases_of=lambda key: ("PHASE3",) if key == "NCT3" else ("PHASE2",))
    assert router.routes_for("NCT3", [status("RECRUITING", "TERMINATED")]) == ["p3"]
    assert router.routes_for("NCT2", [status("RECRUITING", "TERMINATED")]) == []


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("materiality:\n  sites: low\n", "materiality.sites: is not a setting here"),
        ("materiality:\n  site: trivial\n", "materiality.site: 'trivial' should be one of: high, medium, low, noise"),
    ],
)
def test_a_wrong_materiality_setting_names_its_line(tmp_path, yaml, message):
    from monitor.errors import ConfigError

    path = tmp_path / "monitor.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError, match=message):
        load_settings(str(path))


def test_json_changes_carry_materiality_and_its_rule(monitor):
    assert monitor("load", UNKNOWN / "2026-02-02.json").code == 0
    run = monitor("diff", UNKNOWN / "2026-02-02.json", UNKNOWN / "2026-03-02.json", "--format", "json")
    (change,) = [c for c in json.loads(run.out)["changes"] if c["field"] == "overall_status"]
    assert (change["materiality"], change["materiality_rule"]) == ("medium", "status")


def test_diff_and_history_tag_high_and_medium_changes_and_json_uses_the_configured_levels(tmp_path, cli):
    config, db = tmp_path / "monitor.yaml", tmp_path / "monitor.db"
    config.write_text("materiality:\n  status: high\n")
    run = lambda *args: cli("--config", config, "--db", db, *args)  # noqa: E731
    assert run("load", UNKNOWN / "2026-02-02.json", UNKNOWN / "2026-03-02.json").code == 0

    text = run("diff", "NCT06302556").out
    assert "Overall status NOT_YET_RECRUITING -> UNKNOWN  [high: status]" in text
    assert "low:" not in text and "[low" not in text, "low and noise changes carry no tag"
    history = run("history", "NCT06302556").out.splitlines()
    assert history[-1].endswith("  [high: status]"), "a version's headline carries its most material change"
    (change,) = [c for c in json.loads(run("diff", "NCT06302556", "--format", "json").out)["changes"]
                 if c["field"] == "overall_status"]
    assert (change["materiality"], change["materiality_rule"]) == ("high", "status"), "the configured level"
    versions = json.loads(run("history", "NCT06302556", "--format", "json").out)["versions"]
    assert [c["materiality"] for c in versions[-1]["changes"] if c["field"] == "overall_status"] == ["high"]

    config.write_text("materiality:\n  status: low\n")
    assert "[medium: status]" in cli("--db", db, "diff", "NCT06302556").out, "without the file: built-in levels"
    assert "  [status] Overall status NOT_YET_RECRUITING -> UNKNOWN\n" in run("diff", "NCT06302556").out, "low: no tag"


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        ("text", "Materiality: high (stopped-phase3)"),
        ("markdown", "Materiality: **high** (stopped-phase3)"),
        ("html", "Materiality: <strong>high</strong> (stopped-phase3)"),
    ],
)
def test_a_message_names_the_materiality_of_its_top_change(fmt, line):
    from monitor.messages import event_message

    changes = [site(ChangeKind.ADDED), status("RECRUITING", "TERMINATED")]
    top = Materiality({"stopped-phase3": "high"}).top(changes, ("PHASE3",))
    assert top == ("high", "stopped-phase3")
    assert line in event_message("NCT00000003", "T", changes, fmt, 2, 1, material=top).body
    assert "Materiality" not in event_message("NCT00000003", "T", changes, fmt, 2, 1).body


def test_the_readme_expected_and_materiality_example_is_valid(tmp_path):
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if b.startswith("expected:"))
    path = tmp_path / "monitor.yaml"
    path.write_text(block)
    settings = load_settings(str(path))
    assert settings.expected.verification_days == 730
    assert Materiality(settings.materiality).assess(status("RECRUITING", "TERMINATED"), ("PHASE3",))[0] == "high"
    assert Materiality(settings.materiality).assess(status("RECRUITING", "TERMINATED"), ("PHASE2",))[0] == "medium"


def test_a_digest_puts_the_most_material_trial_first_even_when_another_has_more_major_changes():
    from monitor.messages import digest_message, trial_context

    busy = trial_context("NCT00000001", "Busy", [completion("2026-01", "2026-03"), enrollment(100, 90)])
    busy["materiality"] = max(DEFAULT.rank(c) for c in [completion("2026-01", "2026-03"), enrollment(100, 90)])
    stopped = trial_context("NCT00000002", "Stopped", [status("RECRUITING", "TERMINATED")])
    stopped["materiality"] = DEFAULT.rank(status("RECRUITING", "TERMINATED"))
    text = digest_message("me", "daily", [busy, stopped], "text").body
    assert text.index("NCT00000002") < text.index("NCT00000001")
