"""The per-app context every service reads: settings, the DynamoDB client, the CA, the JWT
key ring, the password hasher, the notifier, the brand and a clock (injectable in tests)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from flask import current_app

from common import clock as clocks
from common.brand import DEFAULT_BRAND, Brand, load_brand, using
from common.clock import utc_now
from common.config import ConfigError, NotifierBackend, Settings, env_name
from common.slots import Slots
from common.crypto.certificates import CertificateAuthority, certificate_fingerprint
from common.crypto.hash_slots import QUEUE_PER_SLOT, HashSlots, default_slots
from common.crypto.passwords import PasswordHasher
from common.database import dynamo
from common.keys.encryption import KeyEncryptor, key_encryptor
from common.keys.jwt_keys import JwtKeyRing, ParsedSigningKeys
from common.keys.password_parameter_store import PasswordParameterStore
from common.keys.imported_schemes import ImportedSchemes, ImportedSchemeStore
from common.keys.password_parameters import PasswordParameters, PasswordsAndRingRefresher
from common.keys.ring import RingContents, add_missing_kinds, ensure_ring, read_ring
from common.keys.ring_import import configured_ca, initial_entries
from common.keys.ring_reader import RefreshSecrets, RingReader
from common.keys.ring_refresher import KeyRingRefresher
from common.keys.ring_store import KeyRingStore
from common.mail.message import Mail, Message
from common.mail.notifier import Notifier, make_notifier
from common.mail.outbox import LEASE_SECONDS, Outbox, Timing
from common.mail.sender import MailSender
from common.mail.smtp_mail import smtp_server

if TYPE_CHECKING:  # the stubs package is a test (type-check) dependency only
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

EXTENSION_KEY = "citylogin"
READINESS_TIMEOUT = 1.0  # seconds; a load balancer's probe must not hang on a silent DynamoDB
STARTUP_TIMEOUT = 20.0


@dataclass
class AppContext:
    settings: Settings
    dynamodb: DynamoDBClient
    tables: dynamo.TableNames
    ca: CertificateAuthority
    jwt: JwtKeyRing
    passwords: PasswordHasher
    notifier: Notifier
    refresh_secrets: RefreshSecrets
    key_ring: KeyRingStore
    clock: Callable[[], datetime] = field(default=utc_now)
    # The deployment's brand (common/brand.py): its pages' name, logo and colours, its texts, its mail's sender name.
    brand: Brand = DEFAULT_BRAND
    # The client /readyz probes with: one attempt, short timeouts (None: use `dynamodb`).
    readiness_dynamodb: DynamoDBClient | None = None
    # What the domains keep per app under their Slot (common.slots), typed where each is declared (the event
    # feed, the apps' registry and pushers, the sweepers' stop events, the last CRL, ...), and what the
    # blueprints are given (their flows): the context imports no domain.
    slots: Slots = field(default_factory=Slots)
    # common.web.background's I/O thread pool.
    background_pool: ThreadPoolExecutor | None = None
    # common.mail.sender's MailSender while its thread runs.
    mail_sender: MailSender | None = None
    # Re-reads the key ring on a schedule once an app starts it (build_context makes it).
    ring_refresher: KeyRingRefresher | None = None
    # The Argon2id parameter sets recorded for the deployment, taught to `passwords` (SPEC §6).
    password_parameters: PasswordParameters | None = None

    def now(self) -> datetime:
        return self.clock()

    def epoch(self) -> int:
        """Now in whole epoch seconds (the unit of every `*_epoch` field and TTL)."""
        return clocks.epoch(self.clock())

    def epoch_ms(self) -> int:
        return clocks.epoch_ms(self.clock())

    def public_url(self) -> str:
        """Where links in messages and QR codes point: an app's settings have it (with_public_url);
        ConfigError for a context made without one."""
        if self.settings.public_url is None:
            raise ConfigError(f"{env_name('public_url')} is not set: links in messages and QR codes need it")
        return self.settings.public_url


def open_key_ring(settings: Settings, store: KeyRingStore) -> RingContents:
    """The key ring, created (importing the keys of the settings and data directory) only when
    CITYLOGIN_CREATE_TABLES is true; else a missing ring stops the start (run `citylogin init`)."""
    if settings.create_tables:
        contents, _ = ensure_ring(store, initial=lambda: initial_entries(settings))
    else:
        contents = read_ring(store)
    contents = add_missing_kinds(store, contents)
    _warn_if_another_ca(settings, contents)
    return contents


def _warn_if_another_ca(settings: Settings, contents: RingContents) -> None:
    configured = configured_ca(settings)
    if configured is None:
        return
    (cert_pem, _), source = configured
    ring_ca = certificate_fingerprint(contents.certificate_authority().certificate)
    if certificate_fingerprint(x509.load_pem_x509_certificate(cert_pem.encode())) != ring_ca:
        log.warning("the CA of %s is not the key ring's and is ignored: a CA is only imported into a new ring", source)


def _dynamodb_client(settings: Settings, *, connect_timeout: float, read_timeout: float,
                     max_attempts: int) -> DynamoDBClient:
    return dynamo.make_client(region=settings.aws_region, endpoint_url=settings.dynamodb_endpoint_url,
                              local=settings.dynamodb_local,
                              connect_timeout=connect_timeout, read_timeout=read_timeout, max_attempts=max_attempts,
                              max_pool_connections=settings.dynamodb_max_pool_connections,
                              parameter_validation=settings.dynamodb_parameter_validation)


def hash_slots(settings: Settings) -> HashSlots:
    """The per-process bound on concurrent password hashes (0 in config: sized from cores and memory)."""
    slots = settings.password_hash_slots or default_slots(
        memory_cost_kib=settings.argon2_memory_cost, parallelism=settings.argon2_parallelism,
        memory_budget_mib=settings.password_hash_memory_mib)
    return HashSlots(slots=slots, queue=settings.password_hash_queue or QUEUE_PER_SLOT * slots)


def password_hasher(settings: Settings, *, client: DynamoDBClient, startup_client: DynamoDBClient, table: str,
                    encryptor: KeyEncryptor) -> tuple[PasswordHasher, PasswordParameters]:
    """The hasher of the configured parameters, which verifies on every check one hash of each set the
    deployment has recorded, sealed under `encryptor` (and of CITYLOGIN_ARGON2_LEGACY_PARAMETERS), and of
    each imported scheme key recorded: its own set is recorded first, before this process can hash with it."""
    passwords = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost,
                               parallelism=settings.argon2_parallelism, slots=hash_slots(settings),
                               legacy=settings.argon2_legacy)
    parameters = PasswordParameters(PasswordParameterStore(client, table, encryptor), passwords,
                                    reload_seconds=settings.key_ring_reload_seconds)
    parameters.start(PasswordParameterStore(startup_client, table, encryptor))
    passwords.on_unknown_set = parameters.record_met
    # and one of each imported scheme key the imports recorded (SPEC §17), re-read with the sets
    parameters.imported = ImportedSchemes(ImportedSchemeStore(client, table, encryptor), passwords,
                                          reload_seconds=settings.key_ring_reload_seconds)
    parameters.imported.start(ImportedSchemeStore(startup_client, table, encryptor))
    passwords.on_unknown_key = parameters.imported.met
    return passwords, parameters


def build_context(settings: Settings, *, dynamodb_client: DynamoDBClient | None = None,
                  encryptor: KeyEncryptor | None = None) -> AppContext:
    """Connect to DynamoDB, create missing tables and the key ring if configured to, read the ring."""
    tables = dynamo.TableNames.with_prefix(settings.table_prefix)
    encryptor = encryptor or key_encryptor(settings)
    client = dynamodb_client or _dynamodb_client(
        settings, connect_timeout=settings.dynamodb_connect_timeout, read_timeout=settings.dynamodb_read_timeout,
        max_attempts=settings.dynamodb_max_attempts)
    readiness_client = None if dynamodb_client else _dynamodb_client(
        settings, connect_timeout=READINESS_TIMEOUT, read_timeout=READINESS_TIMEOUT, max_attempts=1)
    # Start-up is not on a request's budget: a cold DynamoDB (Local) may take its time.
    startup_client = dynamodb_client or _dynamodb_client(
        settings, connect_timeout=STARTUP_TIMEOUT, read_timeout=STARTUP_TIMEOUT, max_attempts=5)
    if settings.create_tables:
        dynamo.ensure_tables(startup_client, tables)
    contents = open_key_ring(settings, KeyRingStore(startup_client, tables.key_ring, encryptor))
    store = KeyRingStore(client, tables.key_ring, encryptor)
    reader = RingReader(store, contents)
    parsed = ParsedSigningKeys()
    jwt = JwtKeyRing(contents.signing_keys(parsed), issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                     loader=lambda max_age: reader.reload(max_age=max_age).signing_keys(parsed),
                     reload_seconds=settings.key_ring_reload_seconds)
    refresh_secrets = RefreshSecrets(reader, reload_seconds=settings.key_ring_reload_seconds)
    passwords, password_parameters = password_hasher(settings, client=client, startup_client=startup_client,
                                                     table=tables.key_ring, encryptor=encryptor)
    brand = load_brand(settings.brand_dir, name=settings.brand_name)
    context = AppContext(
        settings=settings, dynamodb=client, readiness_dynamodb=readiness_client, tables=tables,
        ca=contents.certificate_authority(), key_ring=store, jwt=jwt, refresh_secrets=refresh_secrets,
        ring_refresher=PasswordsAndRingRefresher(jwt=jwt, refresh_secrets=refresh_secrets,
                                                 reload_seconds=settings.key_ring_reload_seconds,
                                                 passwords=password_parameters),
        passwords=passwords, password_parameters=password_parameters,
        notifier=make_notifier(backend=settings.notifier.value, region=settings.aws_region,
                               ses_sender=settings.ses_sender, sns_topic_arn=settings.sns_topic_arn,
                               endpoint_url=settings.notifier_endpoint_url, timeout=settings.notify_timeout,
                               attempts=settings.notify_attempts, sender_name=brand.sender_name,
                               smtp=smtp_server(settings) if settings.notifier is NotifierBackend.SMTP else None),
        brand=brand,
    )
    context.notifier.attach(mail_outbox(context), render=lambda mail: render_mail(context, mail))
    return context


def mail_outbox(context: AppContext) -> Outbox:
    settings = context.settings
    return Outbox(context.dynamodb, context.tables.mail_outbox, secrets=context.refresh_secrets,
                  timing=Timing(retry_seconds=settings.mail_retry_seconds,
                                retry_max_seconds=settings.mail_retry_max_seconds,
                                give_up_seconds=settings.mail_give_up_hours * 3600,
                                # longer than a first try can take (each attempt: connect, then each reply)
                                lease_seconds=max(LEASE_SECONDS, settings.notify_attempts * settings.notify_timeout
                                                  * 8 + 30)))


def render_mail(context: AppContext, mail: Mail) -> Message:
    """The mail as this process sends it: its brand's texts, its public URL in the links."""
    with using(context.brand):
        return mail.render(context.settings.public_url)


def ctx() -> AppContext:
    """The context of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
