"""Watching the whole registry (``monitor watch add --all``): the first load and its reconciliation.

The first load pages through every study on ClinicalTrials.gov in full
(:func:`monitor.sources.ctgov_changes.all_studies`), each study through the per-trial boundary
of :meth:`monitor.live.Live._store`.  It is bounded (``limits.max_pages``), stops between
two trials when asked to (SIGTERM), and resumes: the token of the page being read is kept in
service state after every page, so a load stopped part-way starts again at that page, and what
was stored already is recognised by its raw payload and not stored again.

Later cycles ask only what changed (:mod:`monitor.live_plan`); every ``ctgov.full_refresh_days``
the whole listing is read again (a reconciliation): an identical record costs a hash, not a
normalize, and a trial we hold that the registry no longer lists is reported, as the id probe
reports it for a smaller watch set.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from monitor.errors import Stopped
from monitor.live_plan import LAST_FULL, advance_watermark, latest_date
from monitor.normalize.identity import NCT_ID
from monitor.sources.ctgov_changes import FULL_PAGE, all_studies
from monitor.sources.ctgov_source import payload

if TYPE_CHECKING:  # the orchestrator imports this module
    from monitor.live import CycleReport, Live

log = logging.getLogger(__name__)

REGISTRY = ("registry", "all")  # the watch (kind, target) of `watch add --all`
TOKEN = "ctgov.load_token"  # + scope suffix: the page a stopped load resumes at ("" when none)
STOPPED = "stopped part-way through the registry; the next run resumes at the page it stopped in"
LOADED = "ctgov.loaded_at"  # + scope suffix: when the last whole pass ended


def watches_registry(live: Live) -> bool:
    return any((w.kind, w.target) == REGISTRY for w in live.store.watches.all())


def loaded(live: Live, suffix: str = "") -> bool:
    return bool(live.store.service.get_state(LOADED + suffix))


def load_registry(live: Live, report: CycleReport, suffix: str = "", page_size: int = FULL_PAGE) -> str | None:
    """Read every study (resuming a stopped pass), store what is new or changed; returns the
    latest last-update date seen, the watermark of the change queries that follow."""
    store = live.store
    token = store.service.get_state(TOKEN + suffix) or None
    from_start = token is None
    report.plan = "load"
    report.plan_reason = "the whole registry, page by page" + (" (resumed where it stopped)" if token else "")
    log.info("plan=load: %s", report.plan_reason)
    listed: set[str] = set()
    dates: list[str] = []
    for page in all_studies(live.client, token, page_size):
        if live.should_stop():
            raise Stopped(STOPPED)
        answers = []
        for study in page.studies:
            key = study["protocolSection"]["identificationModule"]["nctId"]  # checked by all_studies
            listed.add(key)
            status = study["protocolSection"].get("statusModule") or {}
            dates.append((status.get("lastUpdatePostDateStruct") or {}).get("date"))
            answers.append((key, payload(study, f"{live.client.url}/studies")))
        try:
            live.store_answers(answers, [key for key, _ in answers], report, what="load")
        except Stopped:
            raise Stopped(STOPPED) from None
        report.probed += len(page.studies)
        store.service.set_state(TOKEN + suffix, page.next_token or "")
    if from_start:
        for key in sorted(k for k in store.watches.last_seen() if k not in listed and NCT_ID.fullmatch(k)):
            live._problem(report, key, "not found on ClinicalTrials.gov (no longer in its listing)")
    store.service.set_state(LOADED + suffix, live.now().isoformat())
    return latest_date(dates, not_after=live.now().date())


def first_load(live: Live, report: CycleReport, page_size: int = FULL_PAGE) -> CycleReport:
    """``watch add --all``: watch the whole registry and load it now (or resume the load), into
    ``report``. A stop or a registry failure part-way leaves what was stored, and the page to resume at."""
    live.store.watches.add_watch(*REGISTRY, live.now())
    start = live.client.requests
    try:
        mark = load_registry(live, report, "", page_size)
        live.store.service.set_state(f"{live.source.name}.{LAST_FULL}", live.now().isoformat())
        advance_watermark(live.store, "", mark)
    finally:
        report.requests = live.client.requests - start
    return report
