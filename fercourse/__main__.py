"""``python -m fercourse``: see :mod:`fercourse.cli`."""

import sys

from .cli import main

sys.exit(main())
