"""``python -m verify.audit``: see :mod:`verify.audit.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
