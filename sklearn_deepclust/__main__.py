"""``python -m sklearn_deepclust``: see :mod:`sklearn_deepclust.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
