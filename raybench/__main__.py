"""``python -m raybench``: the raybench command line."""

from raybench.cli import main

main()
