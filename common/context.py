"""The per-app context every service reads: settings, the DynamoDB client, the CA, the JWT
key ring, the password hasher, the notifier and a clock (injectable in tests)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from flask import current_app

from common import dynamo
from common.config import Settings
from common.crypto import PasswordHasher, load_or_create_secret
from common.certificates import CertificateAuthority, load_or_create_ca
from common.jwt_keys import JwtKeyRing, load_or_create_jwt_keys
from common.notifier import Notifier, make_notifier

EXTENSION_KEY = "citylogin"
READINESS_TIMEOUT = 1.0  # seconds; a load balancer's probe must not hang on a silent DynamoDB
STARTUP_TIMEOUT = 20.0


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class AppContext:
    settings: Settings
    dynamodb: object
    tables: dynamo.TableNames
    ca: CertificateAuthority
    jwt: JwtKeyRing
    passwords: PasswordHasher
    notifier: Notifier
    refresh_secret: bytes
    clock: Callable[[], datetime] = field(default=utc_now)
    # The client /readyz probes with: one attempt, short timeouts (None: use `dynamodb`).
    readiness_dynamodb: object | None = None
    # Per-app singletons that domains attach lazily (e.g. the session watcher).
    extras: dict = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock()


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def _load_ca(settings: Settings) -> CertificateAuthority:
    if settings.ca_cert_pem and settings.ca_key_pem:
        return load_or_create_ca(keys_dir(settings), cert_pem=settings.ca_cert_pem,
                                 key_pem=settings.ca_key_pem.get_secret_value())
    if settings.ca_cert_file and settings.ca_key_file:
        return load_or_create_ca(keys_dir(settings), cert_pem=settings.ca_cert_file.read_text(),
                                 key_pem=settings.ca_key_file.read_text())
    return load_or_create_ca(keys_dir(settings))


def _dynamodb_client(settings: Settings, *, connect_timeout: float, read_timeout: float, max_attempts: int):
    return dynamo.make_client(region=settings.aws_region, endpoint_url=settings.dynamodb_endpoint_url,
                              connect_timeout=connect_timeout, read_timeout=read_timeout, max_attempts=max_attempts)


def build_context(settings: Settings, *, dynamodb_client=None) -> AppContext:
    """Load or create the keys, connect to DynamoDB and create missing tables."""
    tables = dynamo.TableNames.with_prefix(settings.table_prefix)
    client = dynamodb_client or _dynamodb_client(
        settings, connect_timeout=settings.dynamodb_connect_timeout, read_timeout=settings.dynamodb_read_timeout,
        max_attempts=settings.dynamodb_max_attempts)
    readiness_client = None if dynamodb_client else _dynamodb_client(
        settings, connect_timeout=READINESS_TIMEOUT, read_timeout=READINESS_TIMEOUT, max_attempts=1)
    if settings.create_tables:
        # Start-up is not on a request's budget: a cold DynamoDB (Local) may take its time.
        dynamo.ensure_tables(dynamodb_client or _dynamodb_client(
            settings, connect_timeout=STARTUP_TIMEOUT, read_timeout=STARTUP_TIMEOUT, max_attempts=5), tables)
    return AppContext(
        settings=settings, dynamodb=client, readiness_dynamodb=readiness_client, tables=tables,
        ca=_load_ca(settings),
        jwt=JwtKeyRing(load_or_create_jwt_keys(keys_dir(settings)),
                       issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                       loader=lambda: load_or_create_jwt_keys(keys_dir(settings))),
        passwords=PasswordHasher(time_cost=settings.argon2_time_cost,
                                 memory_cost=settings.argon2_memory_cost,
                                 parallelism=settings.argon2_parallelism),
        refresh_secret=load_or_create_secret(keys_dir(settings) / "refresh.key"),
        notifier=make_notifier(backend=settings.notifier.value, region=settings.aws_region,
                               ses_sender=settings.ses_sender, sns_topic_arn=settings.sns_topic_arn),
    )


def ctx() -> AppContext:
    """The context of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
