"""The first keys of a new key ring: a CA given by the settings, or the keys an older version kept in
the data directory (keys/ca.pem + ca.key, jwt-<kid>.key, refresh.key), imported once so that an
existing installation keeps its CA, its sessions and its tokens; fresh keys for whatever is missing."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from common.config import ConfigError, Settings, env_name
from common.timefmt import aware_utc
from common.crypto.certificates import ca_from_pem, create_ca
from common.keys.jwt_keys import read_jwt_key_files
from common.keys.ring import ID_TOKEN_KINDS, JWT, ca_entry, imported_refresh_kid, jwt_entry, new_entry, refresh_entry
from common.keys.ring_store import RingEntry

REFRESH_SECRET_FILE = "refresh.key"


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def configured_ca(settings: Settings) -> tuple[tuple[str, str], str] | None:
    """((certificate PEM, key PEM), the variables they came from), if the settings give a CA."""
    if settings.ca_cert_pem and settings.ca_key_pem:
        return ((settings.ca_cert_pem, settings.ca_key_pem.get_secret_value()),
                f"{env_name('ca_cert_pem')}/{env_name('ca_key_pem')}")
    if settings.ca_cert_file and settings.ca_key_file:
        return ((settings.ca_cert_file.read_text(), settings.ca_key_file.read_text()),
                f"{env_name('ca_cert_file')}/{env_name('ca_key_file')}")
    cert, key = keys_dir(settings) / "ca.pem", keys_dir(settings) / "ca.key"
    if cert.is_file() and key.is_file():
        return (cert.read_text(), key.read_text()), f"{cert} and {key}"
    return None


def _ca(settings: Settings, now: datetime) -> RingEntry:
    configured = configured_ca(settings)
    if configured is None:
        return ca_entry(create_ca(now), created_at=now)
    (cert_pem, key_pem), source = configured
    try:
        ca = ca_from_pem(cert_pem, key_pem)
    except ValueError as exc:
        raise ConfigError(f"{source}: not a usable CA ({exc})") from None
    return ca_entry(ca, created_at=ca.certificate.not_valid_before_utc)


def _refresh(settings: Settings, now: datetime) -> RingEntry:
    path = keys_dir(settings) / REFRESH_SECRET_FILE
    if not path.is_file():
        return new_entry("refresh", created_at=now)
    secret = path.read_bytes()
    created_at = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    return refresh_entry(secret, created_at=created_at, kid=imported_refresh_kid(secret, created_at))


def initial_entries(settings: Settings, *, now: datetime | None = None) -> list[RingEntry]:
    """The CA, JWT keys and refresh secret a new ring starts with."""
    now = aware_utc(now)
    jwt_keys = [jwt_entry(key) for key in read_jwt_key_files(keys_dir(settings))]
    id_token_keys = [new_entry(kind, created_at=now) for kind in ID_TOKEN_KINDS]
    return [_ca(settings, now), *(jwt_keys or [new_entry(JWT, created_at=now)]), *id_token_keys,
            _refresh(settings, now)]


def legacy_key_files(settings: Settings) -> list[Path]:
    """The private key files of an older version in the data directory (imported into a new ring)."""
    directory = keys_dir(settings)
    if not directory.is_dir():
        return []
    named = [directory / "ca.key", directory / REFRESH_SECRET_FILE]
    return [p for p in named if p.is_file()] + sorted(directory.glob("jwt-*.key"))
