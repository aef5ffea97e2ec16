"""Shared test helpers: where the data is, and a CLI runner over a real SQLite file."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.cli import main

os.environ["MONITOR_WORKERS"] = "0"  # no worker pool in tests, unless a test asks (tests/test_workers.py)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = Path(os.environ.get("MONITOR_SHARED_DATA", ROOT.parent / "shared" / "data" / "ctgov"))

OPENING = FIXTURES / "ctgov" / "NCT06821503"  # a trial opening: status, start date, criteria, sites
UNKNOWN = FIXTURES / "ctgov" / "NCT06302556"  # a stale record turned UNKNOWN
NOISE = FIXTURES / "ctgov" / "noise" / "NCT06387628"  # two downloads differing only in versionHolder


def study(path: Path) -> dict:
    """A recorded API v2 study."""
    return json.loads(path.read_text())


def write_config(
    path: Path,
    server_url: str,
    trials: list[str],
    schedule: str = "1s",
    extra: str = "",
    timeout: float = 5,
    retries: int = 1,
    shutdown: float = 5,
) -> Path:
    """A daemon's configuration: one watch group of ``trials`` on the local registry at ``server_url``,
    its database and archive beside ``path``."""
    path.write_text(f"""
database: sqlite:///{path.parent / "monitor.db"}
snapshots: {path.parent / "archive"}
ctgov:
  base_url: {server_url}
  rate: 0
  retries: {retries}
  timeout: {timeout}
schedule: {schedule}
daemon:
  shutdown_timeout_seconds: {shutdown}
watches:
  - name: trials
    trials: [{", ".join(trials)}]
{extra}
""")
    return path


class Sleeps(list):
    """Records the waits asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def serve_history(server) -> None:
    """NCT06821503's version history on ``server``: a made-up older version (2025-01-10, 40
    participants), then the recorded one of 2026-02-10."""
    old = study(OPENING / "2026-02-10.json")
    older = copy.deepcopy(old)
    older["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2025-01-10"
    older["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = 40
    server.history["NCT06821503"] = [older, old]


needs_shared = pytest.mark.skipif(
    not (SHARED / "versions").is_dir(),
    reason=f"the real ClinicalTrials.gov data set is not at {SHARED} (set MONITOR_SHARED_DATA to its folder)",
)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "monitor.db"


@pytest.fixture
def cli(capsys):
    """Run the ``monitor`` CLI in-process, as given."""

    def run(*args) -> Run:
        code = main([*map(str, args)])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def monitor(db_path: Path, cli):
    """Run the ``monitor`` CLI in-process against a SQLite file of the test's own."""
    return lambda *args: cli("--db", db_path, *args)


@pytest.fixture
def server():
    """A local ClinicalTrials.gov-compatible server holding the three fixture trials."""
    from ctgov_server import CtgovServer

    server = CtgovServer(
        [study(OPENING / "2026-02-10.json"), study(UNKNOWN / "2026-02-02.json"), study(NOISE / "2026-02-03.json")]
    ).start()
    yield server
    server.stop()


def monitor_process(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m monitor ARGS` as a real process, run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or {**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


POSTGRES = os.environ.get("MONITOR_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path):
    """A fresh, empty database of each kind: a SQLite file, and a PostgreSQL
    database of its own when MONITOR_TEST_POSTGRES_URL names a server (.ci/run starts one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    if not POSTGRES:
        pytest.skip("no PostgreSQL server: set MONITOR_TEST_POSTGRES_URL (.ci/run starts one)")
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def mailbox():
    """A real SMTP server (aiosmtpd) on 127.0.0.1, keeping what it receives."""
    from receivers import Mailbox

    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def webhook():
    """A real HTTP receiver on 127.0.0.1 for json:// and Slack-style posts."""
    from receivers import Webhook

    hook = Webhook()
    yield hook
    hook.stop()
