"""C references of emu's hot kernels, built with cffi (see build.py)."""
