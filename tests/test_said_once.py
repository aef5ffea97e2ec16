"""What a command prints to stderr: each problem once, whatever the verbosity, and no library chatter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import OPENING, monitor_process


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path / 'monitor.db'}\nsnapshots: {tmp_path / 'archive'}\n"
        f"ctgov:\n  base_url: {url}\n  rate: 0\n  retries: 0\n"
    )
    return path


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-vv"]], ids=["quiet", "-v", "-vv"])
def test_a_refused_trial_is_said_once_at_every_verbosity(tmp_path, server, verbosity):
    text = json.dumps(json.loads((OPENING.parent / "NCT06302556" / "2026-02-02.json").read_text()))
    server.set_raw("NCT06302556", text.replace('"briefTitle": "', '"briefTitle": "\\u0000', 1).encode(), "2026-02-02")
    path = config(tmp_path, server.url)
    fetched = monitor_process(*verbosity, "--config", path, "fetch", "NCT06302556", "NCT09999999", cwd=tmp_path)
    assert fetched.returncode == 2, fetched.stderr
    said = fetched.stderr.splitlines()
    assert len([line for line in said if "NUL character" in line]) == 1, fetched.stderr
    assert len([line for line in said if "NCT09999999: not found" in line]) == 1, fetched.stderr
    assert "warning: NCT09999999: not found on ClinicalTrials.gov" in said
    if not verbosity:
        assert len(said) == 3, fetched.stderr  # two warnings and the error, nothing else


def test_a_problem_that_persists_is_said_again_once(tmp_path, server):
    path = config(tmp_path, server.url)
    first = monitor_process("--config", path, "fetch", "NCT09999999", cwd=tmp_path)
    again = monitor_process("--config", path, "fetch", "NCT09999999", cwd=tmp_path)
    assert first.returncode == again.returncode == 2
    for run in (first, again):
        assert len([line for line in run.stderr.splitlines() if "NCT09999999: not found" in line]) == 1, run.stderr


def test_alembic_plugin_setup_is_not_logged_below_vv(tmp_path):
    db = tmp_path / "monitor.db"
    loaded = monitor_process("-v", "--db", db, "load", OPENING / "2026-02-10.json", cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "plugin" not in loaded.stderr.lower(), loaded.stderr
    assert "alembic.runtime.migration: Running stamp_revision" in loaded.stderr, "-v still says what was migrated"
