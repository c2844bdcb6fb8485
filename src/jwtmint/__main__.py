"""``python -m jwtmint``: the command line (see :mod:`jwtmint._cli`)."""

import sys

from ._cli import main

sys.exit(main())
