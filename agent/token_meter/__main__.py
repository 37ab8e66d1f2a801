"""`python -m token_meter`, the same as the `token-meter` command."""

import sys

from .cli import main

sys.exit(main())
