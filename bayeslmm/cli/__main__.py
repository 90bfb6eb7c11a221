"""``python -m bayeslmm.cli``."""

import sys

from bayeslmm.cli.app import main

sys.exit(main())
