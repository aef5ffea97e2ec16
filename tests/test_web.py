"""`monitor serve` over the store loaded from the real versions: the pages, the Atom feeds (parsed with
feedparser), the JSON API mirroring the CLI's JSON, escaping, read-only, and access control."""

from __future__ import annotations

import base64
import json

import feedparser
import pytest
from portfolio_store import build, now
from starlette.testclient import TestClient

from monitor.config import Settings, WebSettings, load_settings
from monitor.errors import UsageError
from monitor.pipeline import load
from monitor.web.app import create_app
from monitor.web.auth import require_credentials

from conftest import OPENING, needs_shared, study

pytestmark = needs_shared


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    store = build(folder / "monitor.db")
    hostile = study(OPENING / "2026-03-10.json")
    hostile["protocolSection"]["identificationModule"]["nctId"] = "NCT09999999"
    hostile["protocolSection"]["identificationModule"]["briefTitle"] = '<script>alert("x")</script> & <b>bold</b>'
    (folder / "hostile.json").write_text(json.dumps(hostile))
    load(store, [folder / "hostile.json"], now=now)
    config = folder / "monitor.yaml"
    config.write_text("watches:\n  - name: opening\n    trials: [NCT06821503, NCT07268053]\n")
    settings = load_settings(str(config))
    yield store, settings
    store.close()


@pytest.fixture(scope="module")
def client(site):
    store, settings = site
    with TestClient(create_app(store, settings, now)) as client:
        yield client


def test_the_portfolio_groups_recent_changes_by_trial_most_severe_first(client):
    page = client.get("/?since=2026-03-01")
    assert page.status_code == 200
    html = page.text
    assert html.index('id="trial-NCT06821503"') < html.index('id="trial-NCT04736173"'), "4 major before none"
    assert "Overall status NOT_YET_RECRUITING -&gt; RECRUITING" in html
    assert 'id="watchlist"' in html and "/feeds/watch/opening.atom" in html


def test_the_portfolio_filters_like_monitor_changes(client):
    html = client.get("/?since=2026-02-01&category=enrollment").text
    assert 'data-category="enrollment">enrollment</span>' in html and 'data-category="locations"' not in html


def test_the_portfolio_names_categories_in_words_and_filters_by_their_codes(client):
    html = client.get("/?category=arms_interventions").text
    assert '<option value="arms_interventions" selected>arms and interventions</option>' in html
    assert '<option value="outcome_switch">outcome switch</option>' in html


def test_the_portfolio_says_one_edit_made_to_three_outcomes_once_as_monitor_diff_does(client):
    html = client.get("/?since=2026-03-01&min_severity=major").text
    section = html[html.index('id="trial-NCT07227597"') :]
    section = section[: section.index("</section>")]
    assert section.count('data-category="outcome_switch"') == 1
    assert "in 3 outcomes; outcome switch after the ACTUAL start 2026-01-29 (3 primary outcomes)" in section
    stored = client.get("/api/changes?since=2026-03-01&min_severity=major&trial=NCT07227597").json()
    assert sum(c["category"] == "outcome_switch" for c in stored) == 3, "the JSON keeps every stored change"


def test_a_trial_page_shows_versions_the_dates_chart_and_a_comparison_in_the_cli_words(client):
    html = client.get("/trials/NCT06657144?from=1&to=4").text
    assert html.count("<polyline") == 3, "start, primary completion and completion"
    assert 'id="comparison"' in html and "v1 (" in html and "v4 (" in html
    opening = client.get("/trials/NCT06821503").text
    assert (
        '<li><span class="category" data-category="status">status</span> Overall status NOT_YET_RECRUITING -&gt; RECRUITING</li>'
        in opening
    )


def test_registry_text_is_escaped_everywhere(client):
    for path in ("/trials/NCT09999999", "/?since=2000-01-01", "/feeds/changes.atom"):
        body = client.get(path).text
        assert '<script>alert("x")</script>' not in body and "<b>bold</b>" not in body, path
    assert "&lt;script&gt;" in client.get("/trials/NCT09999999").text
    feed = feedparser.parse(client.get("/feeds/changes.atom?trial=NCT09999999").content)
    assert not feed.bozo


@pytest.mark.parametrize(
    "path", ["/feeds/changes.atom", "/feeds/changes.atom?category=status&since=2026-02-01", "/feeds/watch/opening.atom"]
)
def test_every_feed_is_valid_atom_and_every_entry_has_id_updated_title_link(client, path):
    response = client.get(path)
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10" and feed.entries
    for entry in feed.entries:
        assert entry.id and entry.updated and entry.title and entry.link.startswith("http://testserver/trials/")
    assert len({e.id for e in feed.entries}) == len(feed.entries)


def test_the_group_feed_holds_only_its_trials(client):
    feed = feedparser.parse(client.get("/feeds/watch/opening.atom").content)
    assert {e.link.rsplit("/", 1)[1] for e in feed.entries} == {"NCT06821503", "NCT07268053"}


def test_the_json_api_mirrors_the_cli_json(client, monitor_json):
    assert client.get("/api/changes?category=status&since=2026-02-01").json() == monitor_json(
        "changes", "--category", "status", "--since", "2026-02-01", "--format", "json"
    )
    assert client.get("/api/trials/NCT06821503").json() == monitor_json("history", "NCT06821503", "--format", "json")
    assert client.get("/api/trials/NCT06657144/diff?from=1&to=3").json() == monitor_json(
        "diff", "NCT06657144", "--from", "1", "--to", "3", "--format", "json"
    )
    one = client.get("/api/trials/NCT09999999/diff")  # one stored version: no error, "old": null
    assert one.status_code == 200 and one.json() == monitor_json("diff", "NCT09999999", "--format", "json")


def test_api_errors_are_json_with_the_cli_message(client):
    missing = client.get("/api/trials/NCT00000001")
    assert missing.status_code == 404 and missing.json()["error"].startswith("NCT00000001 is not in the store")
    bad = client.get("/api/changes?category=colour")
    assert bad.status_code == 400 and bad.json()["error"].startswith("unknown category 'colour'")
    huge = client.get("/api/changes?limit=99999999999999999999999")  # was a 500 (OverflowError in SQLite)
    assert huge.status_code == 400 and huge.json()["error"].startswith("--limit 99999999999999999999999: give")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_nothing_can_write(client, method):
    for path in ("/", "/api/changes", "/trials/NCT06821503"):
        assert client.request(method, path).status_code == 405


def test_credentials_are_required_when_configured(site):
    store, _ = site
    guarded = Settings(web=WebSettings(token="s3cret", username="ana", password="pw"))
    with TestClient(create_app(store, guarded, now)) as client:
        assert client.get("/api/changes?limit=1").status_code == 401
        assert client.get("/api/changes?limit=1&token=s3cret").status_code == 200
        assert client.get("/api/changes?limit=1", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        basic = "Basic " + base64.b64encode(b"ana:pw").decode()
        assert client.get("/api/changes?limit=1", headers={"Authorization": basic}).status_code == 200
        wrong = "Basic " + base64.b64encode(b"ana:nope").decode()
        assert client.get("/api/changes?limit=1", headers={"Authorization": wrong}).status_code == 401


@pytest.mark.parametrize(
    ("host", "web", "refused"),
    [
        ("127.0.0.1", WebSettings(), False),
        ("::1", WebSettings(), False),
        ("localhost", WebSettings(), False),
        ("0.0.0.0", WebSettings(), True),
        ("192.168.1.5", WebSettings(), True),
        ("0.0.0.0", WebSettings(token="t"), False),
        ("0.0.0.0", WebSettings(username="a", password="b"), False),
    ],
)
def test_serving_off_loopback_needs_credentials(host, web, refused):
    if refused:
        with pytest.raises(UsageError, match=f"refusing to serve on {host} without credentials"):
            require_credentials(web, host)
    else:
        require_credentials(web, host)


def test_monitor_serve_off_loopback_without_credentials_exits_2(monitor, tmp_path):
    monitor("load", OPENING)
    run = monitor("serve", "--host", "0.0.0.0")
    assert run.code == 2 and run.err.startswith("error: refusing to serve on 0.0.0.0 without credentials")


@pytest.fixture
def monitor_json(site, cli):
    store, settings = site

    def run(*args):
        result = cli("--db", str(store.engine.url.database), "--config", settings.path, *args)
        assert result.code == 0, result.err
        return json.loads(result.out)

    return run


def test_a_damaged_stored_version_is_a_server_error_naming_trial_and_version(tmp_path):
    from sqlalchemy import text

    from monitor.store import Store

    store = Store.open(str(tmp_path / "monitor.db"))
    load(store, [OPENING / "2026-02-10.json", OPENING / "2026-03-10.json"], now=now)
    with store.engine.begin() as conn:  # by hand, as a damaged file or a hand edit would
        conn.execute(text("UPDATE versions SET record = :garbage WHERE number = 2"), {"garbage": b"z\x00garbage"})
    with TestClient(create_app(store, Settings(), now)) as client:
        for path in ("/api/trials/NCT06821503", "/api/trials/NCT06821503/diff?from=1&to=2"):
            answer = client.get(path)
            assert answer.status_code == 500, (path, answer.status_code)
            assert answer.json()["error"].startswith("NCT06821503 version 2: "), answer.json()
            assert "damaged" in answer.json()["error"]
        page = client.get("/trials/NCT06821503")
        assert page.status_code == 500 and "NCT06821503 version 2: " in page.text
    store.close()
