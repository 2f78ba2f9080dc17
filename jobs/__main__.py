from jobs.processes.cli import main

raise SystemExit(main())
