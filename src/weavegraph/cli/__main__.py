"""``python -m weavegraph.cli``."""

import sys

from . import main

sys.exit(main())
