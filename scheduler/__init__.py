"""Scheduled syncs: `hourbridge serve` runs each profile with a `schedule` on its cron, in the
organisation's timezone; `hourbridge run-now` triggers one profile once, through the same path.
"""
