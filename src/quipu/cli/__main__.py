"""``python -m quipu.cli``."""

from quipu.cli import main

main()
