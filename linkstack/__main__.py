"""``python -m linkstack``: the same as the ``linkstack`` command."""

import sys

from linkstack.tools.cli import main

sys.exit(main())
