"""Secrets never shown: a password, a header token and Slack tokens (literal
and through ``${ENV}``) planted in route URLs, and the web section's token and
basic-auth password, appear in no output, error or log line of any command
(``monitor serve`` included, and its answers), also with ``-vv`` (Apprise's own
debug lines included)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.masking import mask_secrets

from conftest import OPENING, ROOT, UNKNOWN
from receivers import Webhook, free_port

PASSWORD = "Pa55wordXyz9"
HEADER_TOKEN = "HdrTok3nQwerty77"
SLACK_LITERAL = ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ")
SLACK_ENV = ("T0ENV0001", "B0ENV0002", "EnvTok3nSecretValue42xyz")
WEB_TOKEN = "WebTok3nFromEnv55"  # web.token through ${MONITOR_WEB_TOKEN}
WEB_PASSWORD = "WebPa55wordLiteral8"  # web.password written in the file
PLANTED = (PASSWORD, HEADER_TOKEN, *SLACK_LITERAL, *SLACK_ENV, WEB_TOKEN, WEB_PASSWORD)
COMMANDS = [
    ("run", "--once"),
    ("notify", "retry"),
    ("notify", "test"),
    ("deliveries",),
    ("deliveries", "--failed"),
    ("deliveries", "--format", "json"),
    ("status",),
    ("config", "check"),
    ("config", "check", "--format", "json"),
    ("changes",),
    ("changes", "--format", "json"),
    ("watch", "list"),
    ("check",),
    ("history", "NCT06821503"),
    ("diff", "NCT06821503", "--format", "json"),
    ("show", "NCT06821503"),
]
# The CLI in a real process, with Apprise's Slack plugin pointed at the local receiver.
RUN = (
    "import sys; sys.path[:0] = [{root!r}, {tests!r}]; import receivers; receivers.slack_to({base!r}); "
    "from monitor.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture
def receiver():
    hook = Webhook()
    yield hook
    hook.stop()


def planted_config(tmp_path, receiver) -> str:
    closed = free_port()
    path = tmp_path / "monitor.yaml"
    path.write_text(f"""
database: sqlite:///{tmp_path / "monitor.db"}
snapshots: {tmp_path / "archive"}
watches:
  - name: fixtures
    snapshots: [{OPENING}, {UNKNOWN}]
notifications:
  routes:
    - name: hook
      urls: ["json://monitor:{PASSWORD}@127.0.0.1:{receiver.base.rsplit(":", 1)[1]}/hook?+X-Api-Key={HEADER_TOKEN}"]
    - name: hook-down
      urls: ["json://monitor:{PASSWORD}@127.0.0.1:{closed}/hook?+X-Api-Key={HEADER_TOKEN}"]
    - name: slack
      urls: ["slack://{"/".join(SLACK_LITERAL)}/#lupus"]
    - name: slack-env
      urls: ["slack://${{SLACK_TOKENS}}/#lupus"]
web:
  port: {free_port()}
  token: ${{MONITOR_WEB_TOKEN}}
  username: analyst
  password: {WEB_PASSWORD}
""")
    return str(path)


def test_no_planted_secret_appears_in_any_output_or_log_of_any_command(tmp_path, receiver):
    config = planted_config(tmp_path, receiver)
    env = {**os.environ, "SLACK_TOKENS": "/".join(SLACK_ENV), "MONITOR_WEB_TOKEN": WEB_TOKEN, "PYTHONPATH": str(ROOT)}
    code = RUN.format(root=str(ROOT), tests=str(ROOT / "tests"), base=receiver.base)
    found, runs = [], 0
    for verbosity in ((), ("-vv",)):
        for command in COMMANDS:
            args = [sys.executable, "-c", code, *verbosity, "--config", config, *command]
            run = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False, cwd=tmp_path)
            runs += 1
            assert run.returncode in (0, 1, 2), f"{command}: {run.stderr}"
            assert "Traceback" not in run.stderr
            if verbosity:
                assert " DEBUG " in run.stderr, "debug logging was on"
            if command[0] in ("config", "notify") and command[-1] != "retry":
                assert "X-Api-Key=***" in run.stdout, "the route is shown, its secrets masked"
            if command[0] == "config":
                assert run.stdout.count("***") >= 4, "the web token and password are shown masked"
            found += [(" ".join(verbosity + command), s) for s in PLANTED if s in run.stdout + run.stderr]
    assert runs == 2 * len(COMMANDS)
    assert found == [], f"{len(found)} of {len(PLANTED)} planted secrets shown"
    slack_paths = [p for p in receiver.paths if p.startswith("/services/")]
    assert f"/services/{'/'.join(SLACK_LITERAL)}" in slack_paths, "the Slack route really sent"
    assert f"/services/{'/'.join(SLACK_ENV)}" in slack_paths, "the Slack route from ${ENV} really sent"
    assert any(p == "/hook" for p in receiver.paths), "the json route really sent"


def test_monitor_serve_shows_no_web_secret_in_its_output_logs_or_answers(tmp_path, receiver):
    """`monitor -vv serve` with a token and a basic-auth password: requests with the right and the
    wrong credentials (the token also as ?token= for a feed reader); nothing it prints or answers
    holds either secret."""
    import base64
    import re
    import time

    import httpx
    import yaml

    config = planted_config(tmp_path, receiver)
    port = yaml.safe_load(Path(config).read_text())["web"]["port"]
    env = {**os.environ, "MONITOR_WEB_TOKEN": WEB_TOKEN, "SLACK_TOKENS": "/".join(SLACK_ENV), "PYTHONPATH": str(ROOT)}
    load = [sys.executable, "-m", "monitor", "--config", config, "load", str(OPENING)]
    assert subprocess.run(load, capture_output=True, env=env, cwd=tmp_path, timeout=120, check=False).returncode == 0
    args = [sys.executable, "-m", "monitor", "-vv", "--config", config, "serve"]
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    basic = "Basic " + base64.b64encode(f"analyst:{WEB_PASSWORD}".encode()).decode()
    bad_basic = "Basic " + base64.b64encode(f"analyst:{WEB_PASSWORD}x".encode()).decode()
    answers = []
    try:
        for _ in range(600):  # until it listens (bounded: 60 s)
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        for path, headers in [
            ("/", {}),
            ("/", {"Authorization": f"Bearer {WEB_TOKEN}"}),
            ("/", {"Authorization": f"Bearer {WEB_TOKEN}x"}),
            ("/", {"Authorization": basic}),
            ("/", {"Authorization": bad_basic}),
            (f"/feeds/changes.atom?token={WEB_TOKEN}", {}),
            (f"/feeds/changes.atom?token={WEB_TOKEN}x", {}),
            (f"/api/changes?token={WEB_TOKEN}", {}),
            (f"/?since=30d&token={WEB_TOKEN}", {}),  # the page's feed links keep the filters, not the token
            ("/api/trials/NCT06821503", {"Authorization": basic}),
            ("/trials/NCT06821503", {"Authorization": f"Bearer {WEB_TOKEN}"}),
        ]:
            response = httpx.get(base + path, headers=headers, timeout=30)
            answers.append((path, response.status_code, response.text + str(response.headers)))
    finally:
        server.terminate()
        out, err = server.communicate(timeout=60)
    assert [code for _, code, _ in answers] == [401, 200, 401, 200, 401, 200, 401, 200, 200, 200, 200]
    assert " DEBUG " in err, "debug logging was on"
    shown = [(p, s) for p, _, text in answers for s in PLANTED if re.search(re.escape(s), text)]
    shown += [("output", s) for s in PLANTED if s in out + err]
    assert shown == []


def test_apprise_debug_records_are_masked_by_the_library_itself(tmp_path, receiver):
    """Without the CLI: any handler on Apprise's logger sees only masked records."""
    from monitor.config import Route, Settings
    from monitor.messages import Message
    from monitor.notify import AppriseChannel

    import receivers

    receivers.slack_to(receiver.base)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    apprise_log = logging.getLogger("apprise")
    handler, level = Keep(logging.DEBUG), apprise_log.level
    apprise_log.addHandler(handler)
    apprise_log.setLevel(logging.DEBUG)
    try:
        route = Route("slack", urls=(f"slack://{'/'.join(SLACK_LITERAL)}/#lupus",))
        assert AppriseChannel(Settings()).send(route, Message("a title", "a body", "markdown")).ok
    finally:
        apprise_log.removeHandler(handler)
        apprise_log.setLevel(level)
    assert any("/services/***/***/***" in r for r in records), records
    assert [r for r in records if any(s in r for s in SLACK_LITERAL)] == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://user:s3cretPass@host/hook", "json://user:***@host/hook"),
        ("json://host/hook?-X-Api-Key=abc123XYZ&format=text", "json://host/hook?-X-Api-Key=***&format=text"),
        ("json://host/hook?+Authorization=Bearer%20abc", "json://host/hook?+Authorization=***"),
        ("json://host/hook?%2BX-Token=abc", "json://host/hook?%2BX-Token=***"),
        (
            "gotify://host/app?token=abc&key=def&apikey=g&secret=h&password=i",
            "gotify://host/app?token=***&key=***&apikey=***&secret=***&password=***",
        ),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#lupus", "slack://***/***/***/#lupus"),
        (
            "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
            "https://hooks.slack.com/services/***/***/***",
        ),
        ("discord://123456789012345678/kLPxYw9dm2-Qkz_abcd1234efgh", "discord://123456789012345678/***"),
        (
            "mailto://127.0.0.1:25?from=a@example.org&to=b@example.org",
            "mailto://127.0.0.1:25?from=a@example.org&to=b@example.org",
        ),
        (
            "postgresql://monitor:pw@db.example.org:5432/monitor_2026",
            "postgresql://monitor:***@db.example.org:5432/monitor_2026",
        ),
        ("sqlite:////srv/monitor/monitor2026.db", "sqlite:////srv/monitor/monitor2026.db"),
        (
            "https://clinicaltrials.gov/study/NCT06302556?tab=history",
            "https://clinicaltrials.gov/study/NCT06302556?tab=history",
        ),
        ("an error about json://u:p4ssword@h/x: refused", "an error about json://u:***@h/x: refused"),
    ],
)
def test_the_masking_hides_every_kind_of_url_secret_and_nothing_else(url, shown):
    assert mask_secrets(url) == shown


@pytest.mark.parametrize("verbosity", [(), ("-vv",)])
@pytest.mark.parametrize(
    "url",
    [
        "${ROUTE_URL}",  # the variable holds the token alone: the scheme was forgotten
        "xoxb-Tok3nWithoutScheme-0123456789",
    ],
)
def test_a_route_url_apprise_refuses_is_not_shown_by_its_log_either(tmp_path, url, verbosity):
    secret = "xoxb-Tok3nWithoutScheme-0123456789"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "watches:\n  - name: g\n    trials: [NCT06821503]\n"
        f'notifications:\n  routes:\n    - name: r\n      urls: ["{url}"]\n      watches: [g]\n'
    )
    env = {**os.environ, "ROUTE_URL": secret, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "monitor", *verbosity, "--config", config, "config", "check"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False, cwd=tmp_path)
    assert run.returncode == 2
    assert "notifications.routes[0].urls[0]: is not a URL Apprise can send to" in run.stderr
    assert secret not in run.stdout + run.stderr


CTGOV_PASSWORD, CTGOV_KEY = "GatewayPa55word4", "ApiKey0f7heGateway"


@pytest.mark.parametrize("verbosity", [(), ("-vv",)])
def test_credentials_in_the_registry_base_url_appear_in_no_error_status_or_log(tmp_path, verbosity):
    """A registry reached through a gateway that wants credentials in its URL: an unreachable
    one is an error line, a group's last error in `monitor status` and log lines, all masked."""
    base = f"http://monitor:{CTGOV_PASSWORD}@127.0.0.1:{free_port()}/api/v2?apikey={CTGOV_KEY}"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'monitor.db'}\nctgov:\n  base_url: {base}\n  retries: 0\n"
        "watches:\n  - name: g\n    trials: [NCT06821503]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    shown = ""
    for command in (
        ("fetch", "NCT06821503"),
        ("run", "--once"),
        ("status", "--format", "json"),
        ("backfill", "NCT06821503"),
    ):
        args = [sys.executable, "-m", "monitor", *verbosity, "--config", config, *command]
        run = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, check=False, cwd=tmp_path)
        assert run.returncode in (0, 2), f"{command}: {run.stderr}"
        shown += run.stdout + run.stderr
    assert "did not answer http://monitor:***@127.0.0.1:" in shown, "the error still names the request"
    assert CTGOV_PASSWORD not in shown and CTGOV_KEY not in shown
