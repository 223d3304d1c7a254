"""`python -m streams ...`: the same as the `streams` command."""

from streams.cli.main import main

main()
