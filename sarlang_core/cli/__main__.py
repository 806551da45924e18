"""``python -m sarlang_core.cli`` is ``sarlang-cli``."""

import sys

from . import main

sys.exit(main())
