"""The scale benchmark's stand-in registry (bench/standin.py), run small so the benchmark cannot rot:
it answers the monitor's API v2 paths from templates by id, and its registry days make real
changes the monitor stores and noise it does not."""

from __future__ import annotations

import sys
from datetime import timedelta

import httpx
import pytest

from conftest import FIXTURES, ROOT

sys.path.insert(0, str(ROOT / "bench"))

from registry_bench import phase, whole_requests
from standin import CATEGORY, REAL, StandIn, StandInServer, Template

from monitor.sources.ctgov import CtgovClient, Politeness

TEMPLATES = [
    FIXTURES / "ctgov" / "NCT06821503" / "2026-03-10.json",
    FIXTURES / "ctgov" / "NCT06302556" / "2026-03-02.json",
    FIXTURES / "ctgov" / "noise" / "NCT06387628" / "2026-02-04.json",
]


@pytest.fixture
def registry():
    registry = StandIn([Template.of(p.read_bytes()) for p in TEMPLATES], trials=25, churn=0.2)
    server = StandInServer(registry).start()
    yield registry, server
    server.stop()


def test_stand_in_answers_the_probe_and_id_batches_for_every_trial(registry):
    registry, server = registry
    client = CtgovClient(server.url, politeness=Politeness(rate=0, timeout=30))
    keys = registry.keys()
    assert keys[0] == "NCT10000000" and len(set(keys)) == 25
    probe = client.probe(keys)
    assert sorted(probe) == keys
    assert probe[keys[1]] == (registry.template(1).updated, registry.template(1).status)
    fetched = [s["protocolSection"]["identificationModule"]["nctId"] for s in client.studies(keys, batch=10)]
    assert fetched == keys
    assert [kind for kind, _ in server.tally] == ["probe", "fetch", "fetch", "fetch"]
    client.close()


def test_stand_in_pages_a_search_and_finds_a_registry_day_by_its_date(registry):
    registry, server = registry
    edits = registry.registry_day()
    day = registry.updated(registry.index(next(iter(edits))))
    seen, token = [], None
    while True:
        params = {
            "pageSize": "10",
            "filter.advanced": f"AREA[LastUpdatePostDate]RANGE[{day},MAX]",
            "countTotal": "true",
        }
        page = httpx.get(f"{server.url}/studies", params=params | ({"pageToken": token} if token else {})).json()
        seen += [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]
        assert page["totalCount"] == len(edits) == 5
        token = page.get("nextPageToken")
        if not token:
            break
    assert sorted(seen) == sorted(edits)
    everything = httpx.get(f"{server.url}/studies", params={"pageSize": "1000", "countTotal": "true"}).json()
    assert everything["totalCount"] == 25 and "nextPageToken" not in everything


def studies(server, **params) -> tuple[list[str], dict]:
    page = httpx.get(f"{server.url}/studies", params=params)
    assert page.status_code == 200, page.text
    body = page.json()
    return [s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]], body


def test_change_filter_bounds_are_inclusive_and_combine_with_ids_and_queries(registry):
    registry, server = registry
    first = registry.registry_day()
    second = registry.registry_day()
    day1, day2 = (registry.epoch + timedelta(days=d) for d in (1, 2))
    since = lambda low, high="MAX": f"AREA[LastUpdatePostDate]RANGE[{low},{high}]"  # noqa: E731
    changed_since_day1 = sorted(set(first) | set(second))
    assert studies(server, **{"filter.advanced": since(day1), "pageSize": "100"})[0] == changed_since_day1
    assert studies(server, **{"filter.advanced": since(day2), "pageSize": "100"})[0] == sorted(second)
    only_day1 = sorted(set(first) - set(second))
    assert studies(server, **{"filter.advanced": since(day1, day1), "pageSize": "100"})[0] == only_day1
    assert studies(server, **{"filter.advanced": since(day2 + timedelta(days=1)), "pageSize": "100"})[0] == []
    # in query.term (the website's way), joined with AND, and with filter.ids: all AND
    assert studies(server, **{"query.term": since(day2), "pageSize": "100"})[0] == sorted(second)
    both = f"{since(day1)} AND {since('MIN', day1)}"
    assert studies(server, **{"filter.advanced": both, "pageSize": "100"})[0] == only_day1
    some = registry.keys()[:10]
    ids = {"filter.ids": ",".join(some), "filter.advanced": since(day2), "pageSize": "100"}
    assert studies(server, **ids)[0] == [k for k in some if k in second]
    latest, _ = studies(server, **{"filter.advanced": since(day1), "sort": "LastUpdatePostDate:desc", "pageSize": "5"})
    assert set(latest) == set(second)


def test_search_queries_match_the_template_fields(registry):
    registry, server = registry
    template = registry.template(1)
    lead = template.sponsors[0]
    expected = [k for i, k in enumerate(registry.keys()) if registry.template(i).sponsors[:1] == (lead,)]
    assert studies(server, **{"query.spons": lead, "pageSize": "100"})[0] == expected
    status = registry.status(1)
    found, body = studies(server, **{"filter.overallStatus": status, "countTotal": "true", "pageSize": "100"})
    assert found == [k for i, k in enumerate(registry.keys()) if registry.status(i) == status]
    assert body["totalCount"] == len(found) > 0
    slim, _ = studies(server, fields="NCTId,LastUpdatePostDate", pageSize="1000")
    assert len(slim) == 25


@pytest.mark.parametrize(
    "params, message",
    [
        ({"query.nonsense": "x"}, "unknown parameter: query.nonsense"),
        ({"filter.geo": "distance(1,2,3mi)"}, "filter.geo is not served by the stand-in"),
        ({"filter.advanced": "AREA[Phase]PHASE3"}, "not 'AREA[Phase]PHASE3'"),
        ({"filter.advanced": "AREA[LastUpdatePostDate]RANGE[yesterday,MAX]"}, "invalid date 'yesterday'"),
        ({"filter.overallStatus": "OPEN"}, "unknown status OPEN"),
        ({"filter.ids": "NCT1,NCT10000001"}, "invalid NCT id NCT1"),
        ({"pageSize": "-1"}, "pageSize must be positive"),
    ],
)
def test_stand_in_refuses_what_the_api_refuses_or_it_cannot_serve(registry, params, message):
    registry, server = registry
    answer = httpx.get(f"{server.url}/studies", params=params)
    assert answer.status_code == 400 and message in answer.json()["message"]
    assert server.tally == []


def test_registry_day_real_edits_are_stored_and_noise_is_not(registry, tmp_path):
    registry, server = registry
    url, archive, keys = f"sqlite:///{tmp_path / 'bench.db'}", str(tmp_path / "archive"), registry.keys()
    first = phase(url, archive, server.url, keys, registry.now())
    assert first["new"] == 25 and not first["problems"]
    edits = registry.registry_day()
    real = {key: kind for key, kind in edits.items() if kind in REAL}
    assert len(edits) == 5 and len(real) == 3
    server.requests.clear()
    server.tally.clear()
    day = phase(url, archive, server.url, keys, registry.now())
    assert sorted(day["changed"]) == sorted(real)
    assert all(CATEGORY[kind] in day["changed"][key] for key, kind in real.items())
    day["requests"], day["tally"] = len(server.requests), list(server.tally)
    assert day["requests"] == 3  # /version, one probe page, one page of the five updated
    assert whole_requests(day, scale=570_000 / 25) == 1 + 570 + 114  # 114,000 updated at this churn


def test_load_bench_runs_the_real_command_and_reads_its_peak_memory(tmp_path):
    from load_bench import run_load, write_folder

    registry = StandIn([Template.of(p.read_bytes()) for p in TEMPLATES], trials=3, first=20_000_000)
    assert write_folder(registry, tmp_path / "in") > 0
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == [f"NCT2000000{i}.json" for i in range(3)]
    result = run_load(f"sqlite:///{tmp_path / 'load.db'}", str(tmp_path / "archive"), tmp_path / "in")
    assert result["exit"] == 0, result["errors"]
    assert result["peak_mb"] > 10 and result["cpu"] > 0
