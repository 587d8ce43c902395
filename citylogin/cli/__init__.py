"""The `citylogin` command: serve, init, and the operators' commands."""
