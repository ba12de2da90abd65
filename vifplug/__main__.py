"""``python -m vifplug``: the same as the ``vifplug`` command."""

import sys

from vifplug.cli import main

sys.exit(main())
