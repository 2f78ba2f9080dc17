"""The release process: apply pending migrations (see jobs/processes/migrate.py).

Kept at the repository's root for the Procfile; the code lives in the package, so that an
installed ``smartup-sync`` claims no top-level module name but ``jobs``.
"""

import sys

from jobs.processes.migrate import main

if __name__ == "__main__":
    sys.exit(main())
