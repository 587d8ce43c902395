"""The web UI: its pages and scripts (static/), the blueprint that serves them, and the web SDK's files."""
