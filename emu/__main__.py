"""``python -m emu``: the ``emu`` command (:mod:`emu.cli`), for when the script is not on PATH."""

import sys

from .cli import main

if __name__ == "__main__":          # explore --jobs workers (spawn) import this module too
    sys.exit(main())
