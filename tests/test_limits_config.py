"""The limits of monitor.limits set in the configuration's `limits:` section: held to their
ranges like every setting, shown by `config check`, and obeyed by file reading (load, diff,
show) and by the registry client (fetch), all as real `monitor` processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.limits import Limits

from conftest import OPENING, monitor_process

TRIAL = OPENING / "2026-02-10.json"


def config(tmp_path: Path, limits: str, url: str = "http://127.0.0.1:9/api/v2") -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path / 'monitor.db'}\nsnapshots: {tmp_path / 'archive'}\n"
        f"ctgov:\n  base_url: {url}\n  rate: 0\n  retries: 0\nlimits:\n{limits}"
    )
    return path


def test_every_limit_is_a_declared_setting_with_a_range():
    from annotated_types import Ge, Le

    for name, info in Limits.__pydantic_fields__.items():
        bounds = {type(m) for m in info.metadata}
        assert {Ge, Le} <= bounds, f"limits.{name} has no range"


def test_config_check_shows_the_limits(tmp_path):
    path = config(tmp_path, "  max_file_bytes: 5000\n  max_pages: 7\n")
    run = monitor_process("--config", path, "config", "check", "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)["limits"]
    assert shown["max_file_bytes"] == 5000 and shown["max_pages"] == 7
    assert shown["max_json_depth"] == Limits().max_json_depth, "the others keep their defaults"


@pytest.mark.parametrize(
    "line, says",
    [
        ("  max_json_depth: 100000", "limits.max_json_depth: 100000 is more than 500, the most allowed"),
        ("  max_file_bytes: -1", "limits.max_file_bytes: -1 should be a whole number of at least 1024"),
        ("  max_pages: .nan", "limits.max_pages: nan should be a whole number of at least 1"),
        ("  request_deadline_seconds: .inf", "limits.request_deadline_seconds: inf should be a finite number"),
        ("  max_body: 5", "limits.max_body: is not a setting here"),
    ],
)
def test_a_limit_out_of_range_is_one_error_line(tmp_path, line, says):
    path = config(tmp_path, line + "\n")
    for command in (["config", "check"], ["load", str(TRIAL)]):
        run = monitor_process("--config", path, *command, cwd=tmp_path)
        assert run.returncode == 2 and run.stdout == "", run.stderr
        assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"error: {path}:") and says in run.stderr
    assert not (tmp_path / "monitor.db").exists()


@pytest.mark.parametrize("command", ["load", "show", "diff"])
def test_a_lowered_file_size_limit_refuses_a_file_just_over_it(tmp_path, command):
    size = TRIAL.stat().st_size
    files = [TRIAL, TRIAL] if command == "diff" else [TRIAL]  # diff OLD NEW: two files, no store
    over = monitor_process(
        "--config", config(tmp_path, f"  max_file_bytes: {size - 1}\n"), command, *files, cwd=tmp_path
    )
    assert over.returncode == 2 and over.stdout == ""
    assert over.stderr == (
        f"error: {TRIAL}: larger than {size - 1:,} bytes, the limit for one file (limits.max_file_bytes)"
        + ("; nothing was stored\n" if command == "load" else "\n")
    )
    assert not (tmp_path / "monitor.db").exists()
    at = monitor_process("--config", config(tmp_path, f"  max_file_bytes: {size}\n"), command, *files, cwd=tmp_path)
    assert at.returncode == 0, at.stderr


def test_a_lowered_json_depth_refuses_a_file_that_nests_deeper(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps({**json.loads(TRIAL.read_text()), "unread": [[[[[[[[[[[]]]]]]]]]]]}))
    run = monitor_process("--config", config(tmp_path, "  max_json_depth: 11\n"), "load", deep, cwd=tmp_path)
    assert run.returncode == 2
    assert "nested more than 11 levels deep (the limit, limits.max_json_depth); nothing was stored" in run.stderr


def test_a_lowered_body_limit_refuses_a_registry_answer_just_over_it(tmp_path, server):
    nct = "NCT06821503"
    page = len(b'{"studies": [') + len(server.studies[nct]) + len(b"]}")
    path = config(tmp_path, f"  max_body_bytes: {page - 1}\n", server.url)
    over = monitor_process("--config", path, "fetch", nct, cwd=tmp_path)
    assert over.returncode == 2, over.stderr
    assert f"the answer is larger ({page:,} bytes) than the {page - 1:,}-byte limit (limits.max_body_bytes)" in (
        over.stderr
    )
    at = monitor_process(
        "--config", config(tmp_path, f"  max_body_bytes: {page}\n", server.url), "fetch", nct, cwd=tmp_path
    )
    assert at.returncode == 0 and nct in at.stdout, at.stderr


def test_a_registry_record_with_a_nul_is_refused_and_shown_by_status(tmp_path, server):
    text = json.dumps(json.loads((OPENING.parent / "NCT06302556" / "2026-02-02.json").read_text()))
    server.set_raw("NCT06302556", text.replace('"briefTitle": "', '"briefTitle": "\\u0000', 1).encode(), "2026-02-02")
    path = config(tmp_path, "  max_pages: 5\n", server.url)
    fetched = monitor_process("--config", path, "fetch", "NCT06821503", "NCT06302556", "NCT06387628", cwd=tmp_path)
    assert "NCT06821503" in fetched.stdout and "NCT06387628" in fetched.stdout, fetched.stderr
    assert "warning: NCT06302556: " in fetched.stderr and "NUL character" in fetched.stderr
    assert fetched.returncode == 2
    assert fetched.stderr.splitlines()[-1] == (
        "error: not stored: NCT06302556 (1 of the 3 asked for; the others are stored); "
        "the reason is above and in `monitor status`"
    )
    status = monitor_process("--config", path, "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    line = next(line for line in status.stdout.splitlines() if "NCT06302556" in line)
    assert "filter.ids=NCT06302556" in line and "NUL character" in line
    history = monitor_process("--config", path, "history", "NCT06302556", cwd=tmp_path)
    assert history.returncode == 2, "nothing stored for that trial"
