"""Machine-readable webhooks: one JSON document per event (or per digest), posted as the request body.

A route with ``format: json`` gets these documents instead of English text.
Its URLs are ``json://host/path`` (http) or ``jsons://host/path`` (https), as
Apprise spells them, or plain ``http(s)://`` URLs.  The documents follow the
JSON Schemas shipped in ``monitor/schemas/`` (``event-1.json``,
``digest-1.json``); a document names its schema in ``"schema"``, and a new
major version gets a new name, so a receiver can refuse what it does not know.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

from monitor import __version__
from monitor.messages import Message, headline
from monitor.model import Change, Severity
from monitor.summaries import plural

EVENT_SCHEMA = "registry-monitor/event/1"
DIGEST_SCHEMA = "registry-monitor/digest/1"
REGISTRY = "https://clinicaltrials.gov/study/"
TIMEOUT_SECONDS = 30.0


def schema(name: str) -> dict:
    """A shipped JSON Schema: ``event-1`` or ``digest-1``."""
    return json.loads(resources.files("monitor.schemas").joinpath(f"{name}.json").read_text())


def _links(key: str) -> dict[str, str | None]:
    if key.startswith("NCT"):
        return {"url": REGISTRY + key, "history_url": f"{REGISTRY}{key}?tab=history"}
    return {"url": None, "history_url": None}


def trial_document(
    key: str,
    title: str | None,
    changes: list[Change],
    detected_at: datetime,
    version: int | None = None,
    previous: int | None = None,
    registry_date: str | None = None,
    previous_registry_date: str | None = None,
) -> dict[str, Any]:
    ordered = sorted(changes, key=lambda c: c.severity != Severity.MAJOR)
    return {
        "trial": key,
        "nct_id": key if key.startswith("NCT") else None,
        "title": title,
        **_links(key),
        "version": version,
        "previous_version": previous,
        "registry_date": registry_date,
        "previous_registry_date": previous_registry_date,
        "detected_at": detected_at.isoformat(timespec="seconds"),
        "headline": headline(list(ordered)),
        "changes": [c.to_dict() for c in ordered],
    }


def event_document(**trial: Any) -> dict[str, Any]:
    return {"schema": EVENT_SCHEMA, **trial_document(**trial)}


def digest_document(route: str, period: str, sent_at: datetime, trials: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schema": DIGEST_SCHEMA,
        "route": route,
        "period": period,
        "sent_at": sent_at.isoformat(timespec="seconds"),
        "trials": trials,
    }


def http_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("json", "jsons", "http", "https"):
        raise ValueError(f"{scheme}:// cannot take a JSON webhook: use json://, jsons://, http:// or https://")
    return ("https://" if scheme in ("jsons", "https") else "http://") + rest


def post(urls: tuple[str, ...], body: str, client=None) -> str | None:
    """POST ``body`` to every URL; None when all accepted it (2xx), else the first error (no URL in it)."""
    import httpx


    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    headers = {"Content-Type": "application/json", "User-Agent": f"registry-monitor/{__version__}"}
    try:
        for url in urls:
            try:
                response = client.post(http_url(url), content=body.encode(), headers=headers)
            except ValueError as exc:
                return str(exc)
            except httpx.HTTPError as exc:
                return f"webhook unreachable ({exc.__class__.__name__})"
            if not response.is_success:
                return f"webhook answered HTTP {response.status_code}"
    finally:
        if own:
            client.close()
    return None


def event_message(event, changes: list[Change], now: datetime):
    """The message of one delivery (a :class:`monitor.store.Event`) for a ``format: json`` route."""
    version = event.version
    document = event_document(
        key=event.trial_key,
        title=event.title,
        changes=changes,
        detected_at=_aware(version.loaded_at) if version else now,
        version=version.number if version else None,
        previous=event.previous,
        registry_date=version.last_update_posted if version else None,
        previous_registry_date=event.previous_date,
    )
    return Message(document["headline"], json.dumps(document, ensure_ascii=False), "json")


def digest_message(route: str, period: str, events: list[tuple[Any, list[Change]]], now: datetime):
    """One digest document: each trial once (its events merged), most severe trial first."""
    merged: dict[str, tuple[Any, list[Change]]] = {}
    for event, changes in events:
        if event.trial_key in merged:
            first, before = merged[event.trial_key]
            merged[event.trial_key] = (event if event.version else first, before + list(changes))
        else:
            merged[event.trial_key] = (event, list(changes))
    trials = []
    for event, changes in merged.values():
        document = json.loads(event_message(event, changes, now).body)
        document.pop("schema")
        trials.append(document)
    trials.sort(key=lambda t: (-sum(c["severity"] == "major" for c in t["changes"]), -len(t["changes"]), t["trial"]))
    document = digest_document(route, period, now, trials)
    title = f"{plural(len(trials), 'trial')} changed ({period} digest)"
    return Message(title, json.dumps(document, ensure_ascii=False), "json")


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
