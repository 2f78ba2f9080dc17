"""The functions at the dotted paths Redis and web apps hold: ``jobs.queueing.*``.

Every rq-scheduler registration names ``jobs.queueing.scheduled_enqueue``
(:data:`jobs.kinds.SCHEDULED_FUNCTION`), and web apps written against earlier versions
import ``jobs.queueing.enqueue_sync``; both live in :mod:`jobs.processes.queueing`. Keep this
module while any Redis may hold such a registration.
"""

from jobs.processes.queueing import enqueue_sync, scheduled_enqueue

__all__ = ["enqueue_sync", "scheduled_enqueue"]
