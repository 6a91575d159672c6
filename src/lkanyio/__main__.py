"""``python -m lkanyio``: the command line (see :mod:`lkanyio._cli`)."""

from __future__ import annotations

import sys

from lkanyio._cli import main

if __name__ == "__main__":
    sys.exit(main())
