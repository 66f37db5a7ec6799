"""``python -m vidmatte``: the CLI."""

import sys

from vidmatte._cli import main

sys.exit(main())
