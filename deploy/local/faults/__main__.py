"""``python -m deploy.local.faults``: see the package docstring."""

import sys

from deploy.local.faults.cli import main

sys.exit(main())
