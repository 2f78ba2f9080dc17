"""Watching the worker: health (:mod:`~jobs.watching.health`), alerts, Sentry
(:mod:`~jobs.watching.error_tracking`), the web app's overview and the page of the day."""
