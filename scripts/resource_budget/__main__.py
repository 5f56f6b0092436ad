"""`python -m scripts.resource_budget`: see cli.py."""

import sys

from scripts.resource_budget.cli import main

sys.exit(main())
