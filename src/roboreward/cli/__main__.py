"""``python -m roboreward.cli``: the same as the ``roboreward`` console script."""

import sys

from roboreward.cli import main

sys.exit(main())
