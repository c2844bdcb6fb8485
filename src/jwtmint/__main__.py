"""``python -m jwtmint``: the command line (see :mod:`jwtmint.cli`)."""

import sys

from .cli import main

sys.exit(main())
