"""`python -m citylogin ...` is the `citylogin` command."""
from citylogin.cli import main

main()
