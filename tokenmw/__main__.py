"""``python -m tokenmw`` is the ``tokenmw`` command."""

import sys

from tokenmw._cli.main import main

sys.exit(main())
