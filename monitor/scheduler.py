"""APScheduler 3 wiring only: triggers from schedules, and a scheduler whose jobs
coalesce, never overlap and tolerate a late start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import DaemonSettings, Schedule, cron_fields


def trigger(schedule: Schedule, jitter: int = 0):
    if schedule.cron:
        return CronTrigger(**cron_fields(schedule.cron), timezone=UTC, jitter=jitter or None)
    return IntervalTrigger(seconds=schedule.seconds, jitter=jitter or None, timezone=UTC)


def make_scheduler(settings: DaemonSettings) -> BackgroundScheduler:
    return BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.misfire_grace_seconds},
    )


def add_group_job(
    scheduler: BackgroundScheduler,
    name: str,
    schedule: Schedule,
    jitter: int,
    func: Callable[[str], None],
    first_run: datetime | None,
) -> None:
    """Schedule ``func(name)``; an interval group also runs once at ``first_run``."""
    scheduler.add_job(
        func,
        trigger(schedule, jitter),
        args=[name],
        id=f"group:{name}",
        name=name,
        replace_existing=True,
        next_run_time=first_run if schedule.seconds else None,
    )


def next_runs(scheduler: BackgroundScheduler) -> dict[str, datetime | None]:
    return {job.name: job.next_run_time for job in scheduler.get_jobs() if job.id.startswith("group:")}
