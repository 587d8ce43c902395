"""The checks of the SMTP settings (CITYLOGIN_SMTP_*), run once as the settings load: each answer
names the variable, and none quotes a password."""
from __future__ import annotations

import ipaddress
import ssl
from email.utils import getaddresses
from pathlib import Path

LOCAL_SERVERS = "localhost, 127.0.0.1 or ::1"
HOST_ALONE = "a host name or IP address alone: no scheme, no port (that is CITYLOGIN_SMTP_PORT)"


def check_host(value: str) -> str:
    """A host name or an IP address alone (the port is CITYLOGIN_SMTP_PORT); IPv6 with or without brackets."""
    host = value.strip()
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare:
        try:
            ipaddress.IPv6Address(bare)
        except ValueError:
            raise ValueError(HOST_ALONE) from None
    elif not bare or any(c.isspace() or c in "/@?#[]" for c in bare):
        raise ValueError(HOST_ALONE)
    return bare


def check_sender(value: str) -> str:
    """One address, with or without a display name: `no-reply@example.com`, `Example <no-reply@example.com>`."""
    sender = value.strip()
    found = getaddresses([sender])
    address = found[0][1] if len(found) == 1 else ""
    local, at, domain = address.rpartition("@")
    if "\r" in sender or "\n" in sender or not (local and at and "." in domain) or any(c.isspace() for c in address):
        raise ValueError("one address such as no-reply@example.com or \"Example <no-reply@example.com>\"")
    return sender


def check_secret_file(path: Path) -> Path:
    """A file that can be read and holds something (the password, never quoted back)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    if not text.strip():
        raise ValueError(f"{path} is empty")
    return path


def check_ca_file(path: Path) -> Path:
    """A PEM file of one or more CA certificates that TLS can load."""
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{path} is not a readable PEM file of CA certificates "
                         f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    return path


def smtp_problems(*, smtp: bool, host: str | None, local_hosts: frozenset[str], plain: bool, user: str | None,
                  password: bool, password_file: bool, sender: str | None) -> list[str]:
    """What is wrong between the SMTP settings, each naming its variables; [] if nothing."""
    problems = []
    if smtp and not host:
        problems.append("CITYLOGIN_SMTP_HOST is required when CITYLOGIN_NOTIFIER=smtp")
    if smtp and not sender:
        problems.append("CITYLOGIN_SMTP_SENDER (the From address of every mail) is required when "
                        "CITYLOGIN_NOTIFIER=smtp")
    if plain and host and host not in local_hosts:
        problems.append(f"CITYLOGIN_SMTP_SECURITY=none sends mail, links and the password unencrypted: it is only "
                        f"for a server on this machine ({LOCAL_SERVERS}), and CITYLOGIN_SMTP_HOST is {host}; "
                        f"use starttls or tls")
    if password and password_file:
        problems.append("set CITYLOGIN_SMTP_PASSWORD or CITYLOGIN_SMTP_PASSWORD_FILE, not both")
    if (password or password_file) and not user:
        problems.append("CITYLOGIN_SMTP_USER is required with CITYLOGIN_SMTP_PASSWORD or CITYLOGIN_SMTP_PASSWORD_FILE")
    if user and not (password or password_file):
        problems.append("CITYLOGIN_SMTP_USER needs CITYLOGIN_SMTP_PASSWORD or CITYLOGIN_SMTP_PASSWORD_FILE")
    return problems
