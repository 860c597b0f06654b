"""``python -m mesosspawner.images``: the ``mesosspawner-images`` command."""

import sys

from .cli import main

sys.exit(main())
