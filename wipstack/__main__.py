"""``python -m wipstack`` is the ``wipstack`` command."""

import sys

from wipstack.cli import main

sys.exit(main())
