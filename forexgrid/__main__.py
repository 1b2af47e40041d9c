"""``python -m forexgrid``: the same as the ``forexgrid`` command."""

from forexgrid.cli import main

main()
