import sys

from pbtnas.cli import main

sys.exit(main())
