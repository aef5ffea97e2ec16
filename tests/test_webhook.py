"""Machine-readable webhooks: a `format: json` route posts one JSON document per event (and one per
digest) as the request body, valid against the schemas shipped in monitor/schemas/, to a real receiver."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pytest
import test_notify

from monitor.config import load_settings
from monitor.notify import Notifier
from monitor.store import Store
from monitor.webhook import schema

from conftest import OPENING, UNKNOWN

clock, every_backend = test_notify.clock, test_notify.every_backend  # the fixtures
configure, store_changes = test_notify.configure, test_notify.store_changes


def validate(document: dict, name: str) -> None:
    jsonschema.validate(document, schema(name), format_checker=jsonschema.FormatChecker())


def test_each_event_is_one_json_document_valid_against_the_event_schema(tmp_path, webhook, clock):
    route = f'    - name: hook\n      urls: ["{webhook.url}"]\n      format: json\n      min_severity: major\n'
    settings = load_settings(str(configure(tmp_path, route)))
    store = Store.open(settings.database)
    store_changes(settings, store, clock, OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json", UNKNOWN / "2026-03-02.json")
    assert Notifier(store, settings, now=clock).send_due().sent == 2
    assert webhook.content_types == ["application/json", "application/json"]
    for post in webhook.posts:
        validate(post, "event-1")
        assert "message" not in post, "not Apprise's {title, message} envelope"
    opening = next(p for p in webhook.posts if p["trial"] == "NCT06821503")
    assert opening["schema"] == "registry-monitor/event/1"
    assert (opening["version"], opening["registry_date"]) == (2, "2026-03-10")
    assert (opening["previous_version"], opening["previous_registry_date"]) == (1, "2025-02-17")  # its lastUpdatePostDate
    unknown = next(p for p in webhook.posts if p["trial"] == "NCT06302556")
    assert (unknown["previous_version"], unknown["previous_registry_date"], unknown["registry_date"]) == (
        1,
        "2024-03-08",
        "2024-03-08",
    ), "the registry changed this record without posting an update: both versions carry its date"
    assert opening["url"] == "https://clinicaltrials.gov/study/NCT06821503"
    assert opening["changes"][0] == {
        "category": "status",
        "field": "overall_status",
        "change": "modified",
        "old": "NOT_YET_RECRUITING",
        "new": "RECRUITING",
        "severity": "major",
        "summary": "Overall status NOT_YET_RECRUITING -> RECRUITING",
    }
    assert {c["severity"] for c in opening["changes"]} == {"major"}, "the route's rules choose the changes"


def test_a_digest_is_one_document_valid_against_the_digest_schema(tmp_path, webhook, clock):
    route = f'    - name: daily\n      urls: ["{webhook.url}"]\n      format: json\n      digest: daily\n      at: "08:00"\n'
    settings = load_settings(str(configure(tmp_path, route)))
    store = Store.open(settings.database)
    notifier = Notifier(store, settings, now=clock)
    assert notifier.send_due().sent == 0
    store_changes(settings, store, clock, OPENING / "2026-02-10.json", UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, OPENING / "2026-03-10.json", UNKNOWN / "2026-03-02.json")
    clock.advance(minutes=61)
    assert notifier.send_due().sent == 2
    (digest,) = webhook.posts
    validate(digest, "digest-1")
    assert (digest["schema"], digest["route"], digest["period"]) == ("registry-monitor/digest/1", "daily", "daily")
    assert [t["trial"] for t in digest["trials"]] == ["NCT06821503", "NCT06302556"], "most severe first"
    assert sum(len(t["changes"]) for t in digest["trials"]) == 22


@pytest.mark.parametrize("broken", [{"schema": "registry-monitor/event/2"}, {"changes": []}, {"version": 0}])
def test_the_event_schema_refuses_what_it_does_not_describe(tmp_path, webhook, clock, broken):
    route = f'    - name: hook\n      urls: ["{webhook.url}"]\n      format: json\n'
    settings = load_settings(str(configure(tmp_path, route)))
    store = Store.open(settings.database)
    store_changes(settings, store, clock, UNKNOWN / "2026-02-02.json")
    store_changes(settings, store, clock, UNKNOWN / "2026-03-02.json")
    Notifier(store, settings, now=clock).send_due()
    (post,) = webhook.posts
    with pytest.raises(jsonschema.ValidationError):
        validate({**post, **broken}, "event-1")


def test_an_expected_event_posts_a_document_valid_against_the_event_schema(tmp_path, webhook, clock):
    """The merge of expected events (category `expected`) and JSON webhooks: the schema names the category."""
    from monitor.cycles import routes_for
    from monitor.expected_events import record_expected
    from monitor.pipeline import load

    from conftest import SEEDS

    route = f'    - name: hook\n      urls: ["{webhook.url}"]\n      format: json\n'
    settings = load_settings(str(configure(tmp_path, route)))
    store = Store.open(settings.database)
    load(store, [SEEDS], clock)
    routes = routes_for(store, settings, "fixtures")
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)  # the first evaluation is a silent baseline: nothing true yet
    assert record_expected(store, ["ORG-2024-0530"], long_ago, routes=routes) == []
    assert record_expected(store, ["ORG-2024-0530"], clock(), routes=routes)
    assert Notifier(store, settings, now=clock).send_due().sent == 1
    (post,) = webhook.posts
    validate(post, "event-1")
    assert post["changes"][0]["category"] == "expected" and post["nct_id"] is None


@pytest.mark.parametrize("name", ["event-1", "digest-1"])
def test_the_schemas_name_every_category_and_the_summed_up_shape(name):
    """Every category a change can carry (outcome_switch, expected, ...) and a summed-up change's count
    and items are described, so a receiver validating against the schema never refuses a real post."""
    from monitor.model import Category

    definition = schema(name)["$defs"]["change"]
    assert set(definition["properties"]["category"]["enum"]) == {c.value for c in Category}
    assert {"count", "items"} <= set(definition["properties"])
