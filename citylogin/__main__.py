"""`python -m citylogin ...` is the `citylogin` command."""
from citylogin.cli.main import main

main()
