"""``python -m hemosynth``: the command line."""

from .cli import main

main()
