"""``python -m loadtest.report``: the stress report's command line (loadtest/report/cli.py)."""

import sys

from loadtest.report.cli import main

sys.exit(main())
