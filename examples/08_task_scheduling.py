"""SPEC §8: periodic tasks through Celery beat, and `TaskScheduler` for run-time schedules.

Static schedules go in `beat_schedule`; dynamic ones, added and removed while the service
runs, go through `TaskScheduler`, which keeps them in Redis (the broker) so they survive a
beat restart and beat sees a change without one. Beat runs them when started with:

    cd examples && celery -A celery_app beat -S cachemesh_celery_tasks.scheduler:RedisScheduler

This script only writes, lists and removes entries: it needs CELERY_BROKER_URL (a Redis),
not a running worker or beat.
"""

from __future__ import annotations

from datetime import timedelta

from cachemesh import ConfigError, TaskScheduler
from celery.schedules import crontab
from celery_app import app, cleanup

# Periodic tasks known when the app starts: the guide's three schedule kinds.
app.conf.beat_schedule = {
    "nightly-cleanup": {"task": "examples.cleanup", "schedule": crontab(minute=0, hour=2)},
    "every-30-seconds": {"task": "examples.cleanup", "schedule": 30.0, "args": ["cache"]},
    "weekday-mornings": {
        "task": "examples.cleanup",
        "schedule": crontab(minute=0, hour=9, day_of_week="mon-fri"),
        "args": ["reports"],
    },
}
print(f"static beat entries: {sorted(app.conf.beat_schedule)}")

# Run-time schedules: schedule_task(name, task, schedule, args=[...]) and remove_task(name).
scheduler = TaskScheduler(app)
scheduler.schedule_task("poll-inbox", cleanup, 30.0, args=["inbox"])
scheduler.schedule_task(
    "nightly-report", "examples.cleanup", crontab(minute=0, hour=2), args=["reports"]
)
scheduler.schedule_task("hourly-sessions", cleanup, timedelta(hours=1), args=["sessions"])
for name, entry in sorted(scheduler.list_tasks().items()):
    print(f"dynamic entry {name}: {entry['task']} {entry['schedule']} args={entry['args']}")

# A bad schedule fails when it is written, not hours later inside beat.
try:
    scheduler.schedule_task("broken", cleanup, -5)
except ConfigError as exc:  # ScheduleError is a ConfigError
    print(f"refused: {exc}")

print(f"removed poll-inbox: {scheduler.remove_task('poll-inbox')}")
print(f"removed it again: {scheduler.remove_task('poll-inbox')}")
print(f"dynamic entries left: {sorted(scheduler.list_tasks())}")
assert sorted(scheduler.list_tasks()) == ["hourly-sessions", "nightly-report"]

for name in list(scheduler.list_tasks()):  # the demo leaves nothing behind
    scheduler.remove_task(name)
