"""``python -m hub``: the same as the ``ocpi-hub`` command."""

import sys

from hub.cli.main import main

sys.exit(main())
