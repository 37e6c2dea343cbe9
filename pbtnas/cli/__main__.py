"""``python -m pbtnas.cli`` (the same as ``python -m pbtnas``)."""

import os
import sys

from pbtnas.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())
