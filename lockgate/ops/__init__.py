"""The operational layer on the plan/event seams: cron schedules and ``lockgate serve``,
metrics, alerts and freshness SLAs. It sits above :mod:`lockgate.runloop` (it plans and
executes runs and listens to their events); nothing below imports it."""
