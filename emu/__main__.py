"""``python -m emu``: the ``emu`` command (:mod:`emu.cli`), for when the script is not on PATH."""

import sys

from .cli import main

if __name__ == "__main__":          # importing the module (tools, tests) runs nothing
    sys.exit(main())
