"""The bundle's program: the same ``main`` as the ``dhtviewer`` command of a pip install."""

import sys

from dhtviewer.cli import main

if __name__ == "__main__":
    sys.exit(main())
