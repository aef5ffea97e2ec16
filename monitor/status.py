"""What the service is doing and what it did, as plain values: ``monitor status`` and
``monitor run --once`` print these; a Python caller gets the same with one call.

    report = status(store, settings)      # a dict: the daemon, groups, counts, errors
    print(status_text(report))            # the lines `monitor status` prints
    outcome_dicts(run_once(store, settings))   # `monitor run --once --format json`
"""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.clock import utc_now
from monitor.config import Settings
from monitor.cycles import GroupOutcome
from monitor.daemon import LOCK, STALE_AFTER, alive_here
from monitor.expected import RULES
from monitor.live_registry import progress, registry_watched
from monitor.masking import mask_secrets
from monitor.store import Store


def daemon_alive(holder: dict | None, now: datetime) -> bool:
    """Whether the daemon lock's holder is alive: it beat recently enough and, when it runs on
    this host, its process is still there (a ``kill -9``-ed daemon leaves its lock row behind)."""
    if not holder or alive_here(holder.get("owner", "")) is False:
        return False
    return now - datetime.fromisoformat(holder["beat"]) <= STALE_AFTER


def _stale_line(daemon: dict) -> str:
    """A lock row left by a daemon that is gone: what it was, and what to do."""
    return (
        f"daemon          not running: a stale lock of {daemon['owner']} (last heartbeat {daemon['beat'][:19]}), "
        "a process that is gone; the next `monitor run` takes the lock over"
    )


def status(store: Store, settings: Settings, now: datetime | None = None) -> dict:
    """The daemon (running, owner, heartbeat), each watch group's last and next run, trials
    watched and stored, changes in the 24 hours before ``now``, the expected-event counts,
    deliveries pending and failed, and the last ten trial errors.  The database URL is
    as configured: :func:`status_text` and ``to_json`` callers mask it."""
    now = now or utc_now()
    holder = store.service.lock_holder(LOCK)
    state = store.service.state_with_prefix("group.")
    groups = [
        {
            "group": group.name,
            "schedule": group.schedule.text,
            "last_run": state.get(f"group.{group.name}.last_run") or None,
            "next_run": state.get(f"group.{group.name}.next_run") or None,
            "last_result": state.get(f"group.{group.name}.last_result") or None,
            "last_error": state.get(f"group.{group.name}.last_error") or None,
        }
        for group in settings.watches
    ]
    total, major = store.versions.changes_since(now - timedelta(hours=24))
    flagged = store.expected.expected_counts()
    return {
        "database": settings.database,
        "daemon": _daemon(holder, now),
        "groups": groups,
        "trials_stored": store.versions.counts()["trials"],
        "trials_watched": len(store.watches.watched_trials()),
        "changes_24h": {"total": total, "major": major},
        "expected": {
            "trials_evaluated": store.expected.expected_seen_count(),
            "flagged": {rule: flagged.get(rule, 0) for rule in RULES},
        },
        "deliveries": {k: v for k, v in store.deliveries.delivery_counts().items() if k != "sent"},
        "registry": progress(store.service.state_with_prefix("ctgov.")) if registry_watched(store) else None,
        "trial_errors": [
            {"trial": k, "error": e, "at": a.isoformat() if a else None}
            for k, e, a in store.watches.trial_errors()[:10]
        ],
    }


def _daemon(holder: dict | None, now: datetime) -> dict:
    """``running``, the lock holder's owner, since and beat, and ``stale`` when its process is gone."""
    running = daemon_alive(holder, now)
    gone = bool(holder) and not running and alive_here(holder.get("owner", "")) is False
    return {"running": running, **(holder or {}), **({"stale": True} if gone else {})}


def _registry_line(r: dict) -> str:
    """The whole registry's first load (pages and trials read) or, once loaded, its watermark."""
    read = f"{r['pages']:,} pages, {r['trials']:,} trials read"
    if not r["loaded"]:
        return f"registry        loading: {read}" + ("; resumes at the next page" if r["resumes_at_page"] else "")
    line = f"registry        loaded {r['loaded_at'][:19]} ({read}); watermark {r['watermark'] or 'none yet'}"
    if r["reconciled_at"]:
        line += f"; reconciled {r['reconciled_at'][:19]} ({r['reconciled_trials']:,} listed)"
    return line


def _expected_line(expected: dict) -> str:
    """The trials each expected-event rule flags, as stored by the last evaluation."""
    if not expected["trials_evaluated"]:
        return "expected        not evaluated yet (the service evaluates the rules after each cycle)"
    counts = ", ".join(f"{rule} {n}" for rule, n in expected["flagged"].items())
    return f"expected        {counts} (of {expected['trials_evaluated']} trials evaluated)"


def status_text(report: dict) -> str:
    """A :func:`status` report as the lines ``monitor status`` prints (secrets masked)."""
    daemon = report["daemon"]
    lines = [f"database        {mask_secrets(report['database'])}"]
    if daemon["running"]:
        lines.append(
            f"daemon          running ({daemon['owner']}, since {daemon['since'][:19]}, "
            f"heartbeat {daemon['beat'][:19]})"
        )
    elif daemon.get("stale"):
        lines.append(_stale_line(daemon))
    else:
        lines.append(
            "daemon          not running" + (f" (last heartbeat {daemon['beat'][:19]})" if "beat" in daemon else "")
        )
    watched = "the whole registry" if report["registry"] else f"{report['trials_watched']}"
    lines.append(f"trials          {watched} watched, {report['trials_stored']} stored")
    lines.append(f"changes (24 h)  {report['changes_24h']['total']} ({report['changes_24h']['major']} major)")
    lines.append(_expected_line(report["expected"]))
    lines.append(f"deliveries      {report['deliveries']['pending']} pending, {report['deliveries']['failed']} failed")
    for g in report["groups"]:
        lines.append(f"group {g['group']} ({g['schedule']})")
        lines.append(
            f"  last run      {(g['last_run'] or 'never')[:19]}" + (f"  {g['last_result']}" if g["last_result"] else "")
        )
        lines.append(f"  next run      {g['next_run'][:19] if g['next_run'] else 'when the daemon runs'}")
        if g["last_error"]:
            lines.append(f"  last error    {g['last_error']}")
    if report["registry"]:
        lines.append(_registry_line(report["registry"]))
    for e in report["trial_errors"]:
        lines.append(f"error           {e['trial']}: {e['error']} ({(e['at'] or '')[:19]})")
    return "\n".join(lines)


def outcome_dicts(outcomes: list[GroupOutcome]) -> list[dict]:
    """What each watch group's cycle did (:func:`monitor.daemon.run_once`), as JSON-ready dicts."""
    return [
        {
            "group": o.group,
            "line": o.line(),
            "complete": o.complete,
            "problems": o.problems,
            "results": [
                {
                    "trial": r.key,
                    "status": r.status,
                    "version": r.version,
                    "changes": [c.to_dict() for c in r.changes],
                }
                for r in o.results
            ],
            "counts": dict(+o.results.statuses),  # every result's status, listed or not
            "unlisted": o.results.unlisted,  # results past the first LISTED, counted above, not listed
            "membership": [{"trial": k, **e.to_dict()} for k, e in o.membership],
        }
        for o in outcomes
    ]
