"""The flows that span domains, one module each, composed from the domains' services: registration,
pairing, login and confirm (with the concurrency decision), recovery, deletion and "Wasn't you?".
Each reads top-down: fetch → check → decide → one write."""
