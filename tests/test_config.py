"""The configuration: a table of wrong configurations and the exact messages users
see, defaults, environment overrides, and `monitor config check`."""

from __future__ import annotations

import json

import pytest

from monitor.config import load_settings, parse_schedule
from monitor.errors import ConfigError

from conftest import ROOT, SEEDS

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
    # a watch group's source: unknown, or not reading the group's keys
    (
        "watches:\n  - name: a\n    source: ctgv\n    trials: [NCT06518668]\n",
        "CFG:3: watches[0].source: 'ctgv' is not a source (known: ctgov, files)",
    ),
    (
        "watches:\n  - name: a\n    source: files\n    trials: [NCT06518668]\n",
        "CFG:3: watches[0].source: the source files does not read trials or queries (the source ctgov does)",
    ),
    (
        f"watches:\n  - name: a\n    snapshots: [{SEEDS}]\n    source: ctgov\n",
        "CFG:4: watches[0].source: the source ctgov does not read snapshots (the source files does)",
    ),
    (  # the example from the issue: a typo in an interval
        "watches:\n  - {name: a, trials: [NCT06518668]}\n  - {name: b, trials: [NCT06518668]}\n"
        "  - name: c\n    trials: [NCT06518668]\n    schedule: every 5 minuts\n",
        "CFG:6: watches[2].schedule: 'every 5 minuts' is not an interval or cron expression",
    ),
    ("schedule: 61 * * * *\n", "CFG:1: schedule: '61 * * * *' is not an interval or cron expression"),
    (
        "databse: x\n",
        "CFG:1: databse: is not a setting here (expected one of: ctgov, daemon, database, expected, limits, materiality, "
        "notifications, schedule, snapshots, storage, watches, web)",
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
    (
        "watches:\n  - name: a\n",
        "CFG:2: watches[0]: watches nothing: give it trials, queries or snapshots (or all: true, the whole registry)",
    ),
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

# YAML a configuration never needs, and values out of range: each is one line with its place.
WRONG += [
    ("*k : 3\n", "CFG:1: an alias (*k) cannot be a key: write the key out"),
    ("database: &k x.db\n*k : 3\n", "CFG:2: an alias (*k) cannot be a key: write the key out"),
    ("ctgov: &a {rate: *a}\n", "CFG:1: the alias *a refers to the value that holds it"),
    (  # an alias bomb: 11,111 values from 130 characters (eight levels of nine are 43 million)
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abc", "bcd", strict=True)),
        "CFG:4: the aliases repeat more than 10,000 values in all: write the values out",
    ),
    ("database: !foo x.db\n", "CFG:1: database: the tag !foo is not supported: write the value without it"),
    (
        "ctgov: !!python/object {}\n",
        "CFG:1: ctgov: the tag !!python/object is not supported: write the value without it",
    ),
    ("ctgov: {rate: !!float fast}\n", "CFG:1: ctgov.rate: 'fast' cannot be read as a value"),
    ("? [database]\n: x.db\n", "CFG:1: a key should be a plain name"),
    (
        "ctgov:\n  rate: 1\n  retries: 2\n  rate: 2\n",
        "CFG:4: ctgov.rate: is given twice (lines 2 and 4): keep one",
    ),
    (
        "schedule: every 1 hour\nwatches: []\nschedule: every 2 hours\n",
        "CFG:3: schedule: is given twice (lines 1 and 3): keep one",
    ),
    ("[" * 5000 + "\n", "CFG:1: nested more than 50 levels deep"),
    (
        "ctgov:\n  retries: " + "9" * 5001 + "\n",
        "CFG:2: ctgov.retries: '" + "9" * 37 + "...' cannot be read as a value",
    ),
    (
        "schedule: every 99999999999 days\n",
        "CFG:1: schedule: 'every 99999999999 days' is longer than the longest interval (366 days)",
    ),
    ("schedule: 0 0 30 2 *\n", "CFG:1: schedule: '0 0 30 2 *' never fires (no date matches it)"),
    (
        "watches:\n  - name: a\n    trials: [NCT06518668]\n    schedule: 0 0 31 4 *\n",
        "CFG:4: watches[0].schedule: '0 0 31 4 *' never fires (no date matches it)",
    ),
    ("schedule: '*/0 * * * *'\n", "CFG:1: schedule: '*/0 * * * *' is not an interval or cron expression"),
    ("ctgov:\n  rate: .nan\n", "CFG:2: ctgov.rate: nan should be a finite number of at least 0"),
    ("ctgov:\n  rate: .inf\n", "CFG:2: ctgov.rate: inf should be a finite number of at least 0"),
    ("ctgov:\n  rate: -1\n", "CFG:2: ctgov.rate: -1 should be a number of at least 0"),
    ("ctgov:\n  rate: 1000\n", "CFG:2: ctgov.rate: 1000 is more than 100, the most allowed"),
    ("ctgov:\n  retries: 1000000000000\n", "CFG:2: ctgov.retries: 1000000000000 is more than 20, the most allowed"),
    (  # a bound is written exactly, never rounded (4.29497e+09)
        "limits:\n  max_body_bytes: 4294967297\n",
        "CFG:2: limits.max_body_bytes: 4294967297 is more than 4294967296, the most allowed",
    ),
    (
        "storage:\n  keep_raw_versions: 1000001\n",
        "CFG:2: storage.keep_raw_versions: 1000001 is more than 1000000, the most allowed",
    ),
    ("ctgov:\n  timeout: 0\n", "CFG:2: ctgov.timeout: 0 should be a number of at least 1"),
    ("ctgov:\n  timeout: .inf\n", "CFG:2: ctgov.timeout: inf should be a finite number of at least 1"),
    ("ctgov:\n  full_refresh_days: 1e9\n", "CFG:2: ctgov.full_refresh_days: '1e9' should be a number of at least 1"),
    (
        "ctgov:\n  full_refresh_days: 1.0e+9\n",
        "CFG:2: ctgov.full_refresh_days: 1000000000.0 is more than 366, the most allowed",
    ),
    (
        "ctgov:\n  backfill_per_cycle: 1.5\n",
        "CFG:2: ctgov.backfill_per_cycle: 1.5 should be a whole number of at least 0",
    ),
    (
        "daemon:\n  shutdown_timeout_seconds: 99999999999\n",
        "CFG:2: daemon.shutdown_timeout_seconds: 99999999999 is more than 3600, the most allowed",
    ),
    (
        "daemon:\n  misfire_grace_seconds: 0\n",
        "CFG:2: daemon.misfire_grace_seconds: 0 should be a whole number of at least 1",
    ),
    ("daemon:\n  jitter_seconds: -5\n", "CFG:2: daemon.jitter_seconds: -5 should be a whole number of at least 0"),
    (
        "notifications:\n  max_age_hours: .nan\n",
        "CFG:2: notifications.max_age_hours: nan should be a finite number of at least 1",
    ),
    (
        "database: foo://bar\n",
        "CFG:1: database: foo:// is not a database we support (sqlite:///PATH, postgresql+psycopg://USER@HOST/DB, "
        "or a SQLite file path)",
    ),
    (
        "database: mysql+pymysql://u@h/db\n",
        "CFG:1: database: mysql+pymysql:// is not a database we support (sqlite:///PATH, "
        "postgresql+psycopg://USER@HOST/DB, or a SQLite file path)",
    ),
    (
        "notifications:\n  routes:\n    - name: r\n      urls: ['json://hooks.example.org/${MONITOR_TEST_UNSET_TOKEN}']\n",
        "CFG:4: notifications.routes[0].urls[0]: names an environment variable that is not set: ${MONITOR_TEST_UNSET_TOKEN}",
    ),
]

# Files and folders the configuration names that do not exist: `config check` and `run` refuse them;
# commands that do not use them (history, show...) still work.
MISSING = [
    (
        "watches:\n  - name: a\n    snapshots: [no-such-folder/]\n",
        "CFG:3: watches[0].snapshots[0]: 'no-such-folder/': no such file or folder",
    ),
    (
        "notifications:\n  apprise_config: no-such-apprise.yml\n",
        "CFG:2: notifications.apprise_config: 'no-such-apprise.yml': no such file",
    ),
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


def test_deep_nesting_is_refused_before_the_yaml_scanner_reads_it(tmp_path):
    """PyYAML's scanner takes time growing with the square of the nesting: 900,000 `[` are
    refused by counting brackets first (quoted ones do not count)."""
    path = tmp_path / "monitor.yaml"
    path.write_text("[" * 900_000)
    with pytest.raises(ConfigError, match=r":1: nested more than 50 levels deep$"):
        load_settings(str(path))
    path.write_text("database: '" + "[" * 60 + ".db'\n")
    assert load_settings(str(path)).database == "[" * 60 + ".db"


def test_a_configuration_that_is_not_a_regular_file_or_too_large_is_refused(tmp_path):
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would wait forever
    with pytest.raises(ConfigError) as raised:
        load_settings(str(fifo))
    assert raised.value.message == f"{fifo}: not a regular file (a configuration is a YAML file)"
    large = tmp_path / "large.yaml"
    large.write_text("#" * 1_000_001)
    with pytest.raises(ConfigError) as raised:
        load_settings(str(large))
    assert raised.value.message == f"{large}: larger than 1,000,000 bytes: not a configuration file"
