"""The day's budget and what is kept between runs: the plan (:mod:`~jobs.day.plan`), the
state (:mod:`~jobs.day.state`), sealed days (:mod:`~jobs.day.sealing`), settling
(:mod:`~jobs.day.reconcile`), and the steps one run takes with them (:mod:`~jobs.day.steps`)."""
