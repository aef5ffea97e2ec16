"""The configuration through the command: every wrong configuration is one
`error:` line and exit 2 from `config check` and from `run --once` (never a
traceback, nothing created); an option beats the environment, which beats the
file; the environment is read in one place."""

from __future__ import annotations

import json
import re

import pytest
from test_config import GOOD, MISSING, WRONG

from monitor.config import OVERRIDES, load_settings

from conftest import ROOT, SEEDS

CASES = WRONG + MISSING
IDS = [f"{i}-{m.split(': ')[1][:30]}" for i, (_, m) in enumerate(CASES)]


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in the file are relative to the working directory
    for variable, _ in OVERRIDES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    path = tmp_path / "monitor.yaml"

    def write(text: str):
        path.write_text(text)
        return path

    return write


@pytest.mark.parametrize(("text", "message"), CASES, ids=IDS)
def test_config_check_refuses_a_wrong_configuration_in_one_line(config, cli, text, message):
    path = config(text)
    run = cli("--config", path, "config", "check")
    assert (run.code, run.out) == (2, "")
    assert run.err == f"error: {message.replace('CFG', str(path))}\n"


@pytest.mark.parametrize(("text", "message"), CASES, ids=IDS)
def test_run_once_refuses_a_wrong_configuration_before_touching_the_database(config, cli, tmp_path, text, message):
    path = config(text)
    db = tmp_path / "monitor.db"
    run = cli("--config", path, "--db", db, "run", "--once")
    assert run.code == 2
    assert run.err == f"error: {message.replace('CFG', str(path))}\n"
    assert not db.exists()


@pytest.mark.parametrize(("text", "message"), MISSING)
def test_a_missing_file_or_folder_does_not_stop_commands_that_do_not_use_it(config, text, message):
    settings = load_settings(str(config(text)))
    assert [m.split(": ", 1)[1] for m in settings.missing] == [message.split(": ", 1)[1]]


def test_folders_that_exist_are_accepted(config):
    settings = load_settings(str(config(f"watches:\n  - name: seeds\n    snapshots: [{SEEDS}]\n")))
    assert settings.missing == ()
    settings.require_files()


# --- precedence: option > environment > file -------------------------------------

PRECEDENCE = [
    # (setting, the file's text, the environment's value, the option and its value, how `config check` shows it)
    ("database", "database: file.db\n", "env.db", ("--db", "option.db"), lambda d: d["database"]),
    (
        "snapshots",
        "snapshots: file-archive\n",
        "env-archive",
        ("--snapshots", "option-archive"),
        lambda d: d["snapshots"],
    ),
    (
        "ctgov.base_url",
        "ctgov:\n  base_url: http://file.example/api/v2\n",
        "http://env.example/api/v2",
        ("--ctgov-url", "http://option.example/api/v2"),
        lambda d: d["ctgov"]["base_url"],
    ),
    ("ctgov.rate", "ctgov:\n  rate: 0.25\n", "0.5", ("--rate", "2"), lambda d: d["ctgov"]["rate"]),
    ("ctgov.retries", "ctgov:\n  retries: 1\n", "2", ("--retries", "3"), lambda d: d["ctgov"]["retries"]),
]


@pytest.mark.parametrize(("setting", "text", "env", "option", "shown"), PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_an_option_beats_the_environment_which_beats_the_file(
    config, cli, monkeypatch, setting, text, env, option, shown
):
    path = config(text)
    variable, flag = OVERRIDES[setting]
    assert flag == option[0]

    def effective(*options) -> str:
        run = cli("--config", path, *options, "config", "check", "--format", "json")
        assert run.code == 0, run.err
        return str(shown(json.loads(run.out)))

    file_value = effective()
    monkeypatch.setenv(variable, env)
    env_value = effective()
    option_value = effective(*option)
    assert file_value.removesuffix(".0") in text
    assert env_value.removesuffix(".0") == env
    assert option_value.removesuffix(".0") == option[1]


def test_every_setting_the_environment_sets_has_an_option_and_a_precedence_test():
    assert sorted(OVERRIDES) == sorted(p[0] for p in PRECEDENCE)


def test_the_command_line_url_beats_monitor_ctgov_url_in_the_client(config, monkeypatch):
    """The bug of old: `--ctgov-url` lost to MONITOR_CTGOV_URL where the client was made."""
    from monitor.cycles import make_live
    from monitor.store import Store

    monkeypatch.setenv("MONITOR_CTGOV_URL", "http://env.example/api/v2")
    settings = load_settings(None, {"ctgov.base_url": "http://option.example/api/v2"})
    live = make_live(Store.open("sqlite://"), settings)
    try:
        assert live.client.url == "http://option.example/api/v2"
    finally:
        live.client.close()


WRONG_OVERRIDES = [
    ({"MONITOR_CTGOV_RATE": "nan"}, (), "MONITOR_CTGOV_RATE: nan should be a finite number of at least 0"),
    ({"MONITOR_CTGOV_RATE": "fast"}, (), "MONITOR_CTGOV_RATE: 'fast' should be a number of at least 0"),
    ({"MONITOR_CTGOV_RETRIES": "2.5"}, (), "MONITOR_CTGOV_RETRIES: 2.5 should be a whole number of at least 0"),
    (
        {"MONITOR_DB": "foo://bar"},
        (),
        "MONITOR_DB: foo:// is not a database we support (sqlite:///PATH, "
        "postgresql+psycopg://USER@HOST/DB, or a SQLite file path)",
    ),
    ({"MONITOR_CTGOV_URL": "clinicaltrials.gov"}, (), "MONITOR_CTGOV_URL: 'clinicaltrials.gov' is not an http(s) URL"),
    (  # a control character: httpx refuses it at the first request (exit 3 before)
        {"MONITOR_CTGOV_URL": "http://x\x1b[2J/api/v2"},
        (),
        "MONITOR_CTGOV_URL: 'http://x\\x1b[2J/api/v2' is not an http(s) URL",
    ),
    (
        {},
        ("--ctgov-url", "https://clinicaltrials.gov/api v2"),
        "--ctgov-url: 'https://clinicaltrials.gov/api v2' is not an http(s) URL",
    ),
    ({}, ("--rate", "nan"), "--rate: nan should be a finite number of at least 0"),
    ({}, ("--rate", "inf"), "--rate: inf should be a finite number of at least 0"),
    ({}, ("--retries", "1000"), "--retries: 1000 is more than 20, the most allowed"),
    (
        {},
        ("--db", "foo://bar"),
        "--db: foo:// is not a database we support (sqlite:///PATH, "
        "postgresql+psycopg://USER@HOST/DB, or a SQLite file path)",
    ),
]


@pytest.mark.parametrize(
    ("env", "options", "message"), WRONG_OVERRIDES, ids=[m.split(":")[0] for *_, m in WRONG_OVERRIDES]
)
def test_the_environment_and_options_are_held_to_the_same_ranges(config, cli, monkeypatch, env, options, message):
    path = config(GOOD.replace("seeds/", str(SEEDS)))
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    for command in (("config", "check"), ("run", "--once")):
        run = cli("--config", path, *options, *command)
        assert (run.code, run.err) == (2, f"error: {message}\n")


def test_the_environment_is_read_in_one_place():
    readers = re.compile(r"os\.environ|getenv|expandvars|envvar=")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "monitor").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if readers.search(line)
    ]
    assert found and all(f.startswith("monitor/config.py:") for f in found), found
