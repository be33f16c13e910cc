"""``python -m tokenmw`` is the ``tokenmw`` command."""

import sys

from .cli import main

sys.exit(main())
