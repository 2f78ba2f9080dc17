"""The optional dashboard process (see jobs/processes/dashboard.py).

Kept at the repository's root for the Procfile; the code lives in the package, so that an
installed ``smartup-sync`` claims no top-level module name but ``jobs``.
"""

import sys

from jobs.processes.dashboard import main

if __name__ == "__main__":
    sys.exit(main())
