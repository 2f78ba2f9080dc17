"""One run: :func:`~jobs.run.sync.run_sync`, its row and locks (:mod:`~jobs.run.rows`) and
its progress (:mod:`~jobs.run.progress`). Knows nothing of RQ."""
