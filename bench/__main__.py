"""``python -m jaxgrad_bench OPTIONS`` is ``jaxgrad bench OPTIONS``."""

import sys

from ._launch import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
