"""``python -m tvnumba``: the command line (see :mod:`tvnumba.cli`)."""

import sys

from .cli import main

sys.exit(main())
