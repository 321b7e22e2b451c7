"""``python -m callmetrics``: the command line."""

import sys

from callmetrics._cli import main

sys.exit(main())
