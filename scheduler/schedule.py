"""Pure schedule arithmetic: cron triggers in the organisation's timezone, next fire times,
and which billing month a run syncs. No clocks are read here; callers pass ``now``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.interval import IntervalTrigger

from core.config import HourbridgeConfig, ScheduleConfig, crontab_trigger
from core.periods import MONTHLY, Period, PeriodScheme


def trigger_for(schedule: ScheduleConfig, tz: ZoneInfo) -> Any:
    """The trigger of a schedule: its cron (APScheduler's CronTrigger) evaluated in ``tz``, the
    organisation's timezone, weekdays numbered as in cron (0 or 7 = Sunday); or an interval."""
    if schedule.cron is None:
        assert schedule.interval_seconds is not None  # the config requires one of the two
        return IntervalTrigger(seconds=schedule.interval_seconds, timezone=tz)
    return crontab_trigger(schedule.cron, tz)


def scheduled_profiles(config: HourbridgeConfig) -> dict[str, ScheduleConfig]:
    """Each profile that has a schedule, by name, in name order."""
    return {
        name: profile.schedule
        for name, profile in sorted(config.profiles.items())
        if profile.schedule is not None
    }


def next_fire_times(config: HourbridgeConfig, now: datetime) -> dict[str, datetime]:
    """Each scheduled profile's next run at or after ``now``, as an aware datetime in the
    organisation's timezone. A profile whose cron can never fire again is left out."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = config.organisation.tz
    result: dict[str, datetime] = {}
    for name, schedule in scheduled_profiles(config).items():
        fire = trigger_for(schedule, tz).get_next_fire_time(None, now.astimezone(tz))
        if fire is not None:
            result[name] = fire
    return result


def period_for(
    schedule: ScheduleConfig | None,
    moment: datetime,
    tz: ZoneInfo,
    scheme: PeriodScheme = MONTHLY,
) -> Period:
    """The billing period a run at ``moment`` syncs: the period of ``moment`` in ``tz``, or the
    one before it (``period: previous``, also the default without a schedule)."""
    current = scheme.containing(moment, tz)
    if schedule is not None and schedule.period == "current":
        return current
    return current.previous()
