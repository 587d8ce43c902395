"""The devices domain: devices and their certificates, the CA's revocation list, pairing tokens and
the concurrency policy (a pure rule over the live sessions). Served over HTTP by device_manager/ (/device)."""
