"""``python -m assemblers.cli`` (the same as the ``assemblers`` console script)."""

import sys

from assemblers.cli.main import main

sys.exit(main())
