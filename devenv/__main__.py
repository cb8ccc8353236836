"""Entry point: `python -m devenv up | down | status | seed`."""

import sys

from .cli import main

sys.exit(main())
