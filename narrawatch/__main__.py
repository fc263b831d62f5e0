"""``python -m narrawatch`` = the ``narrawatch`` command."""

import sys

from narrawatch.cli import main

sys.exit(main())
