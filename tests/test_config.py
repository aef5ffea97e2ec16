"""The configuration: a table of wrong configurations and the exact messages users
see, defaults, environment overrides, and `monitor config check`."""

from __future__ import annotations

import json

import pytest

from monitor.config import load_settings, parse_schedule
from monitor.errors import ConfigError

from conftest import ROOT

GOOD = """\
database: sqlite:///data/monitor.db
ctgov:
  rate: 0.5
schedule: every 2 hours
watches:
  - name: seeds
    snapshots: seeds/
  - name: lupus
    trials: [NCT06518668, nct06337474]
    queries: ["query.cond=lupus&query.intr=CAR-NK"]
    schedule: "0 7 * * 1-5"
notifications:
  routes: []
"""

WRONG = [
    (  # the example from the issue: a typo in an interval
        "watches:\n  - {name: a, trials: [NCT06518668]}\n  - {name: b, trials: [NCT06518668]}\n"
        "  - name: c\n    trials: [NCT06518668]\n    schedule: every 5 minuts\n",
        "CFG:6: watches[2].schedule: 'every 5 minuts' is not an interval or cron expression",
    ),
    ("schedule: 61 * * * *\n", "CFG:1: schedule: '61 * * * *' is not an interval or cron expression"),
    (
        "databse: x\n",
        "CFG:1: databse: is not a setting here (expected one of: ctgov, daemon, database, "
        "notifications, schedule, snapshots, watches, web)",
    ),
    (
        "watches:\n  - name: a\n    trials: [NCT123]\n",
        "CFG:3: watches[0].trials[0]: 'NCT123' is not an NCT id (NCT followed by 8 digits)",
    ),
    (
        "watches:\n  - name: a\n    queries: ['pageSize=5']\n",
        "CFG:3: watches[0].queries[0]: pageSize is not a search parameter (use query.*, filter.*, postFilter.*, "
        "aggFilters)",
    ),
    ("watches:\n  - name: a\n", "CFG:2: watches[0]: watches nothing: give it trials, queries or snapshots"),
    (
        "watches:\n  - {name: a, snapshots: x}\n  - {name: a, snapshots: y}\n",
        "CFG:3: watches[1].name: 'a' is used by an earlier watch group",
    ),
    ("watches: seeds/\n", "CFG:1: watches: should be a list of watch groups"),
    ("ctgov:\n  rate: fast\n", "CFG:2: ctgov.rate: 'fast' should be a number of at least 0"),
    ("ctgov:\n  retries: 2.5\n", "CFG:2: ctgov.retries: 2.5 should be a whole number of at least 0"),
    ("ctgov:\n  base_url: clinicaltrials.gov\n", "CFG:2: ctgov.base_url: 'clinicaltrials.gov' is not an http(s) URL"),
    ("ctgov:\n  backfill: sometimes\n", "CFG:2: ctgov.backfill: 'sometimes' should be true or false"),
    ("notifications:\n  routes: {a: 1}\n", "CFG:2: notifications.routes: should be a list of routes"),
    ("watches: [oops\n", "CFG:2: not valid YAML (expected ',' or ']', but got '<stream end>')"),
]


@pytest.mark.parametrize(("text", "message"), WRONG, ids=[m.split(": ")[1] + f"-{i}" for i, (_, m) in enumerate(WRONG)])
def test_a_wrong_configuration_names_the_line_and_path(tmp_path, text, message):
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(str(path))
    assert raised.value.message == message.replace("CFG", str(path))


def test_every_mistake_is_listed_by_config_check(tmp_path, monitor):
    path = tmp_path / "monitor.yaml"
    path.write_text("schedule: sometimes\nwatches:\n  - name: a\n    trials: [NCT1]\n")
    run = monitor("--config", path, "config", "check")
    assert run.code == 2
    assert run.err.splitlines() == [
        f"error: {path}:1: schedule: 'sometimes' is not an interval or cron expression",
        f"error: {path}:4: watches[0].trials[0]: 'NCT1' is not an NCT id (NCT followed by 8 digits)",
    ]


def test_a_good_configuration_reads_with_defaults_where_silent(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(GOOD)
    settings = load_settings(str(path))
    assert settings.database == "sqlite:///data/monitor.db"
    assert settings.ctgov.rate == 0.5 and settings.ctgov.retries == 5
    seeds, lupus = settings.watches
    assert seeds.snapshots == ("seeds/",) and seeds.schedule.seconds == 7200 and seeds.kind == "snapshots"
    assert lupus.trials == ("NCT06518668", "NCT06337474") and lupus.schedule.cron == "0 7 * * 1-5"


def test_the_environment_overrides_urls_and_secrets(tmp_path, monkeypatch):
    path = tmp_path / "monitor.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("MONITOR_DB", "postgresql+psycopg://monitor:s3cret@db/monitor")
    monkeypatch.setenv("MONITOR_CTGOV_URL", "http://mirror.example/api/v2")
    settings = load_settings(str(path))
    assert settings.database == "postgresql+psycopg://monitor:s3cret@db/monitor"
    assert settings.ctgov.base_url == "http://mirror.example/api/v2"


def test_config_check_prints_the_effective_configuration_with_secrets_masked(tmp_path, capsys, monkeypatch):
    from monitor.cli import main

    path = tmp_path / "monitor.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("MONITOR_DB", "postgresql+psycopg://monitor:s3cret@db/monitor")
    assert main(["--config", str(path), "config", "check", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out
    data = json.loads(out)
    assert data["database"] == "postgresql+psycopg://monitor:***@db/monitor"
    assert [w["name"] for w in data["watches"]] == ["seeds", "lupus"]


def test_the_embedded_default_configuration_is_valid():
    settings = load_settings(str(ROOT / "config" / "monitor.yaml"))
    assert [g.name for g in settings.watches] == ["seeds"]


@pytest.mark.parametrize(
    ("text", "seconds", "cron"),
    [
        ("every 5 minutes", 300, None),
        ("90s", 90, None),
        ("1 hour", 3600, None),
        ("every 2 days", 172800, None),
        ("0 7 * * *", None, "0 7 * * *"),
        ("*/15 * * * 1-5", None, "*/15 * * * 1-5"),
    ],
)
def test_schedules_are_intervals_or_cron_expressions(text, seconds, cron):
    schedule = parse_schedule(text)
    assert (schedule.seconds, schedule.cron) == (seconds, cron)


@pytest.mark.parametrize("text", ["every 5 minuts", "soon", "0 7 * *", "0 25 * * *", "every 0 hours", ""])
def test_other_schedules_are_refused(text):
    assert parse_schedule(text) is None
