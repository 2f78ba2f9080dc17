"""The processes and their entry points: the CLI, the worker, the scheduler, the RQ job,
queueing, migrations, the dashboard and the demo."""
