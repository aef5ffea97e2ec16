"""The settings model: each setting declared once (kind, range, default, display); a watch
group names its source or has it inferred as before; `config check` shows what is set."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from annotated_types import Ge, Le
from pydantic import ValidationError

from monitor.config import load_settings
from monitor.settings import CtgovSettings, Settings, WatchGroup
from monitor.settingsview import effective

from conftest import SEEDS

SOURCES = [
    # (the group's keys, the source it reads)
    (f"snapshots: [{SEEDS}]", "files"),
    ("trials: [NCT06518668]", "ctgov"),
    ("queries: ['query.cond=lupus']", "ctgov"),
    (f"trials: [NCT06518668]\n    snapshots: [{SEEDS}]", "ctgov"),  # today's mixed group: both are read
    (f"source: files\n    snapshots: [{SEEDS}]", "files"),
    ("source: ctgov\n    trials: [NCT06518668]", "ctgov"),
]


@pytest.mark.parametrize(("keys", "source"), SOURCES, ids=[f"{s}-{i}" for i, (_, s) in enumerate(SOURCES)])
def test_a_watch_group_names_its_source_or_has_it_inferred_from_its_keys(tmp_path, keys, source):
    path = tmp_path / "monitor.yaml"
    path.write_text(f"watches:\n  - name: a\n    {keys}\n")
    (group,) = load_settings(str(path)).watches
    assert group.source == source
    assert group.kind == ("snapshots" if source == "files" else "ctgov")


def _sections(kind=Settings):
    for name, info in kind.__pydantic_fields__.items():
        yield kind, name, info
        if hasattr(info.annotation, "__pydantic_fields__"):
            yield from _sections(info.annotation)


def test_every_number_setting_has_a_range():
    numbers = [(k, n, i) for k, n, i in _sections() if i.annotation in (int, float)]
    assert len(numbers) >= 20
    for kind, name, info in numbers:
        assert {Ge, Le} <= {type(m) for m in info.metadata}, f"{kind.__name__}.{name} has no range"


def test_every_setting_with_a_value_is_shown_by_config_check_in_declaration_order():
    shown = effective(Settings())
    for section in ("storage", "ctgov", "daemon", "limits", "expected"):
        assert list(shown[section]) == list(Settings.__pydantic_fields__[section].annotation.__pydantic_fields__)
    assert list(shown)[:5] == ["config", "database", "snapshots", "storage", "ctgov"]


def test_unset_values_are_not_shown_and_secrets_are_masked(cli, tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"watches:\n  - name: seeds\n    snapshots: [{SEEDS}]\n"
        "web:\n  username: ana\n  password: pw-s3cret\n  token: tok-s3cret\n"
    )
    run = cli("--config", path, "config", "check")
    assert run.code == 0, run.err
    assert "null" not in run.out and "trials: []" not in run.out and "s3cret" not in run.out
    data = json.loads(cli("--config", path, "config", "check", "--format", "json").out)
    assert data["watches"] == [{"name": "seeds", "schedule": "every 6 hours", "snapshots": [str(SEEDS)], "source": "files"}]
    assert data["web"] == {"host": "127.0.0.1", "port": 8080, "token": "***", "username": "ana", "password": "***"}
    assert data["notifications"]["routes"] == []


def test_settings_made_in_python_are_held_to_the_same_ranges():
    with pytest.raises(ValidationError, match="1000 is more than 100, the most allowed"):
        CtgovSettings(rate=1000)
    with pytest.raises(ValidationError, match="'2' should be a whole number of at least 0"):
        replace(CtgovSettings(), retries="2")
    with pytest.raises(ValidationError, match="watches nothing"):
        WatchGroup("empty")
