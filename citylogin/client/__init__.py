"""A device's client of citylogin's API, and the `citylogin client` commands built on it."""
