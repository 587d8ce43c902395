"""Settings, layered once: defaults, then CITYLOGIN_* environment variables, then a test config.

Every setting is a field of `Settings`; its environment variable is CITYLOGIN_<FIELD NAME>.
An invalid value stops the start with a `ConfigError` naming the variable.
"""
from __future__ import annotations

import base64
import binascii
import os
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from common import mail_settings
from common.brand import check_name

ENV_PREFIX = "CITYLOGIN_"
# Where `citylogin serve` puts the web UI by default: the link target of development processes on a
# local engine (standalone services, tests) that are not told CITYLOGIN_PUBLIC_URL.
DEVELOPMENT_PUBLIC_URL = "http://localhost:5000"


class ConcurrencyPolicy(str, Enum):
    ASK = "ask"
    REJECT = "reject"
    FORCE = "force"


DpopMode = Literal["allowed", "required"]


class EvictionOrder(str, Enum):
    OLDEST_LOGIN = "oldest_login"
    LEAST_RECENTLY_USED = "least_recently_used"


class NotifierBackend(str, Enum):
    CONSOLE = "console"
    SES = "ses"
    SNS = "sns"
    SMTP = "smtp"


class SmtpSecurity(str, Enum):
    STARTTLS = "starttls"  # plain connection upgraded by STARTTLS before anything is sent (port 587)
    TLS = "tls"            # TLS from the first byte (port 465)
    NONE = "none"          # no encryption: only to a server on this machine


class LogFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the environment variable."""


class Settings(BaseModel):
    """All settings with their defaults. Field name X is read from CITYLOGIN_X."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # storage
    data_dir: Path = Path(".data")
    # where `citylogin serve` records where it runs, for the operator commands of any folder (None:
    # $XDG_RUNTIME_DIR/citylogin, else ~/.local/state/citylogin; the user's own and writable by no one else,
    # or refused: citylogin.server.running_services)
    runtime_dir: Path | None = None
    dynamodb_endpoint_url: str | None = None
    # the endpoint is a DynamoDB Local (signed with a fixed local key pair, tables created at
    # start): None decides by the endpoint's host (localhost, 127.0.0.1, ::1); anything else signs
    # with the normal AWS credential chain, as Amazon DynamoDB (regional or VPC endpoint) needs
    dynamodb_local: bool | None = None
    # the port of the DynamoDB Local `citylogin serve` starts (and `citylogin dynamodb-local`'s default);
    # None: a free port at each start
    dynamodb_local_port: int | None = Field(default=None, ge=1, le=65535)
    aws_region: str = "us-east-1"
    table_prefix: str = "citylogin_"
    # None: create missing tables and the key ring at start only against a DynamoDB Local
    create_tables: bool | None = None
    # a budget per DynamoDB call: a request fails with 503 within about
    # dynamodb_max_attempts * dynamodb_read_timeout seconds when DynamoDB does not answer
    dynamodb_connect_timeout: float = Field(default=1.0, gt=0, le=60)
    dynamodb_read_timeout: float = Field(default=2.0, gt=0, le=120)
    dynamodb_max_attempts: int = Field(default=2, ge=1, le=10)
    # one pooled connection per request thread (gunicorn's `threads`); botocore's check of every
    # request against the API model costs CPU on each call: on in the tests, off in production
    dynamodb_max_pool_connections: int = Field(default=64, ge=1, le=1024)
    dynamodb_parameter_validation: bool = False
    # serving
    # the loopback by name: `citylogin serve` announces what it binds as typed, and passkeys need a host name
    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    cors_origins: list[str] = []
    log_level: str = "INFO"
    trusted_proxies: int = Field(default=0, ge=0, le=10)
    log_format: LogFormat = LogFormat.TEXT
    # operations: the audit stream also to this file (JSON lines); /metrics is 404 until a token is set
    audit_log: Path | None = None
    metrics_token: SecretStr | None = None
    # certificates and keys: the key ring in DynamoDB, sealed under a key-encryption key (SPEC §10)
    key_encryption_key: SecretStr | None = None
    kms_key_id: str | None = None
    key_ring_reload_seconds: float = Field(default=60.0, ge=0.5, le=3600)
    ca_cert_file: Path | None = None
    ca_key_file: Path | None = None
    cert_validity_days: int = Field(default=365, ge=1, le=3650)
    # renewal (SPEC §4): logins say renew_certificate within this many days of expiry, and a
    # certificate expired less than the grace ago still logs in (with proof of possession) to renew
    cert_renew_before_days: int = Field(default=30, ge=0, le=3650)
    cert_renewal_grace_days: int = Field(default=30, ge=0, le=365)
    # passwords: Argon2id at OWASP's m=19 MiB, t=2, p=1 (docs/guides/operating.md, "Passwords", for RFC 9106's stronger
    # setting); at most `password_hash_slots` hashes run at once per process (0: one per core, as
    # many as `password_hash_memory_mib` holds) and at most `password_hash_queue` wait (0: 8 a slot)
    argon2_time_cost: int = Field(default=2, ge=1, le=20)
    argon2_memory_cost: int = Field(default=19456, ge=8192, le=4194304)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    # an override: parameter sets to verify on every password check besides those the processes
    # record themselves in the key ring table, e.g. "t=3,m=65536,p=4" (several separated by ";";
    # docs/guides/operating.md, "Passwords")
    argon2_legacy_parameters: str = ""
    password_hash_slots: int = Field(default=0, ge=0, le=256)
    password_hash_queue: int = Field(default=0, ge=0, le=4096)
    password_hash_memory_mib: int = Field(default=512, ge=16)
    # tokens and sessions (seconds)
    jwt_issuer: str = "citylogin"
    jwt_audience: str = "citylogin"
    access_token_ttl: int = Field(default=900, ge=30, le=86400)
    session_idle_timeout: int = Field(default=1800, ge=60)
    session_max_lifetime: int = Field(default=43200, ge=60)
    refresh_reuse_grace: int = Field(default=10, ge=0, le=300)
    # the OpenID Provider (SPEC §14): PKCE of every app, not only of public clients and --require-pkce ones
    oidc_require_pkce: bool = False
    # apps that register themselves (RFC 7591): without an operator's initial access token too (open), and how
    # many registrations one address may make a minute (each counted in the registration's own write)
    oidc_open_registration: bool = False
    oidc_registrations_per_minute_per_ip: int = Field(default=20, ge=1)
    # an app that registers itself naming no request_object_signing_alg: signed request objects only (off), or
    # unsigned ones too, as OIDC Registration §2's default has it (on: what the Foundation's Dynamic OP plan sends)
    oidc_registered_apps_send_unsigned_request_objects: bool = False
    # an app's jwks_uri: seconds its keys are kept before they are fetched again (an unknown kid fetches them
    # sooner, at most every CITYLOGIN_OIDC_JWKS_REFETCH_SECONDS), and the fetch's time limit
    oidc_jwks_cache_seconds: int = Field(default=300, ge=1, le=86400)
    oidc_jwks_refetch_seconds: int = Field(default=5, ge=1, le=3600)
    oidc_jwks_fetch_timeout: float = Field(default=3.0, gt=0, le=30)
    # what citylogin fetches or posts to for an app that registered itself (its jwks_uri, request_uris,
    # back-channel logout URL) may be on a private address too (loopback, 10/8, 169.254/16...): off, so that no
    # app aims citylogin at the deployment's own network; an app an operator added may use any address
    oidc_fetch_private_addresses: bool = False
    # how often each process reads the security events feed while anyone waits on it (SPEC §11: an
    # app's guard refuses a revoked session's token within 1 s, this interval included)
    events_poll_interval: float = Field(default=0.5, ge=0.1, le=10)
    events_heartbeat: float = Field(default=15.0, ge=1, le=300)
    # open event streams: at most this many per session and per user in one process (one more
    # replaces the oldest), and per process (one more is refused; 0: under citylogin's gunicorn
    # worker, which holds no thread per stream, what the open-files limit leaves; else 256)
    events_max_streams_per_session: int = Field(default=2, ge=1, le=1000)
    events_max_streams_per_user: int = Field(default=8, ge=1, le=10000)
    events_max_streams: int = Field(default=0, ge=0, le=100000)
    # apps (SPEC §11): how long POST /ssf/poll with returnImmediately false holds a request for an event
    ssf_long_poll_seconds: float = Field(default=30.0, ge=1, le=30)
    # how often each process serving /ssf looks for push work (RFC 8935; 0: this process never pushes)
    ssf_push_interval: float = Field(default=1.0, ge=0, le=60)
    # the longest wait between two tries of a push that fails (from 1 s, doubling); a new event is
    # tried at once whatever the wait (relying_parties.push)
    ssf_push_backoff_max: float = Field(default=300.0, ge=1, le=3600)
    # how often each process serving /session ends the sessions over by time with their events (0: never)
    session_sweep_interval: float = Field(default=30.0, ge=0, le=3600)
    # citylogin's gunicorn worker: a request's head and body (64 KiB at most) must arrive within
    # this long, or the connection is closed; no thread waits for them meanwhile
    request_read_timeout: float = Field(default=10.0, gt=0, le=300)
    pairing_token_ttl: int = Field(default=600, ge=30, le=86400)
    pairing_tokens_per_hour: int = Field(default=10, ge=1)
    # account deletion (SPEC §4): how often each process sweeps unfinished deletions (0: never),
    # and how long a deletion's last pass waits for writes that were in flight when it began
    deletion_sweep_interval: float = Field(default=60.0, ge=0, le=86400)
    deletion_settle_seconds: int = Field(default=60, ge=0, le=86400)
    # devices and the concurrency policy (SPEC §5)
    max_registered_devices: int = Field(default=10, ge=1, le=1000)
    max_concurrent_devices: int = Field(default=1, ge=0, le=1000)
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ASK
    evict: EvictionOrder = EvictionOrder.OLDEST_LOGIN
    # live sessions per device class on top of the total, e.g. "mobile=1,desktop=1" (empty: none)
    device_class_limits: str = ""
    # operators (SPEC §15): a destructive admin action needs a sign-in at most this old, or the password again
    admin_reauth_seconds: int = Field(default=300, ge=0, le=86400)
    # searches (GET /admin/accounts) per operator a minute, counted in DynamoDB: every process sees them
    admin_search_limit: int = Field(default=60, ge=1, le=100000)
    # login (SPEC §6)
    require_proof_of_possession: bool = True
    # DPoP (SPEC §12): "allowed" binds a session whose client sends a proof; "required" refuses a login without one
    dpop: DpopMode = Field(default="allowed")
    trusted_client_cert_header: str | None = None
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=50, ge=1)
    challenges_per_minute_per_ip: int = Field(default=120, ge=1)
    # the OpenID Provider (SPEC §14): authorization requests kept for the person per client address a
    # minute (a sign-in makes one or two; an office behind one NAT address is many people), and pushed
    # requests (PAR) per address a minute (an app's server pushes one for each of its users signing in)
    authorization_requests_per_minute_per_ip: int = Field(default=600, ge=1)
    pushed_requests_per_minute_per_ip: int = Field(default=6000, ge=1)
    # devices without a browser (RFC 8628): how long a user code waits for the person, how often the screen
    # may poll (seconds), device authorization requests per address a minute (screens behind one NAT
    # address), and user codes a person's address may present a minute, right or wrong (RFC 8628 §5.1)
    device_code_ttl: int = Field(default=600, ge=60, le=1800)
    device_poll_interval: int = Field(default=5, ge=1, le=60)
    device_authorizations_per_minute_per_ip: int = Field(default=600, ge=1)
    user_codes_per_minute_per_ip: int = Field(default=20, ge=1)
    # registration (SPEC §4): new-account attempts per client IP an hour, and how many of them may
    # be refused as username_taken (past that, every attempt is 429 for the hour); an e-mail
    # address another account holds is never refused
    registrations_per_hour_per_ip: int = Field(default=20, ge=1)
    registration_refusals_per_hour_per_ip: int = Field(default=10, ge=1)
    # certificate renewals (POST /device/renew) per device a day: each one grows the CRL
    renewals_per_day_per_device: int = Field(default=4, ge=1)
    # notifications (SPEC §7)
    notifier: NotifierBackend = NotifierBackend.CONSOLE
    ses_sender: str | None = None
    sns_topic_arn: str | None = None
    notifier_endpoint_url: str | None = None  # SES's or SNS's endpoint, if not AWS's own for the region
    notify_timeout: float = Field(default=5.0, gt=0, le=60)  # connect and read, each attempt
    notify_attempts: int = Field(default=3, ge=1, le=10)
    # the mail outbox (common/mail/outbox.py): a mail that did not go is tried again after mail_retry_seconds,
    # doubling (jittered) up to mail_retry_max_seconds, until mail_give_up_hours after it was written;
    # each process's sender looks for due mail every mail_send_interval seconds (0: this one never does)
    mail_retry_seconds: float = Field(default=30.0, gt=0, le=3600)
    mail_retry_max_seconds: float = Field(default=1800.0, gt=0, le=86400)
    mail_give_up_hours: float = Field(default=48.0, gt=0, le=720)
    mail_send_interval: float = Field(default=5.0, ge=0, le=3600)
    # SMTP (CITYLOGIN_NOTIFIER=smtp): the server, how the connection is secured, who logs in
    # (the password inline or in a file read at each connection, so a rotated secret is picked up),
    # the From address and the CA that signs the server's certificate if the system's store does not
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)  # None: 587, 465 with tls, 25 with none
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
    smtp_sender: str | None = None
    smtp_ca_file: Path | None = None
    # links in messages and QR codes: <public_url>/#verify=<token> (SPEC §4); None: `citylogin serve`
    # derives it from what it binds; required under gunicorn and against Amazon DynamoDB
    # (common.web.app_factory.with_public_url)
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s#?]+$")
    # passkeys (WebAuthn): origins accepted beside the public URL's own, such as a native app's
    # `android:apk-key-hash:...`; the relying-party id is always the public URL's host
    passkey_origins: list[str] = []
    # a CA to import into the key ring when it is created (inline, e.g. from a secret store)
    ca_cert_pem: str | None = None
    ca_key_pem: SecretStr | None = None
    # branding (docs/guides/branding.md): a folder of brand.json, logo.svg|png and texts/<lang>.json
    # (a malformed file is logged and left out, never a failed start), and the name over the folder's
    brand_dir: Path | None = None
    brand_name: str | None = None

    @property
    def uses_dynamodb_local(self) -> bool:
        """DynamoDB Local (fixed credentials, a local key file allowed), else Amazon DynamoDB."""
        return is_local_dynamodb(self.dynamodb_endpoint_url, self.dynamodb_local)

    @model_validator(mode="before")
    @classmethod
    def _create_tables_from_endpoint(cls, values: Any) -> Any:
        # A local engine is a developer's: create what is missing. Amazon DynamoDB: `citylogin init` does.
        if isinstance(values, dict) and values.get("create_tables") is None:
            try:
                local = is_local_dynamodb(values.get("dynamodb_endpoint_url"), values.get("dynamodb_local"))
            except ValidationError:  # not a bool: the field's own check names CITYLOGIN_DYNAMODB_LOCAL
                return values
            values = {**values, "create_tables": local}
        return values

    @field_validator("device_class_limits")
    @classmethod
    def _class_equals_count_pairs(cls, value: str) -> str:
        parse_class_limits(value)
        return value

    @field_validator("brand_name")
    @classmethod
    def _a_name_a_person_reads(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)

    @field_validator("argon2_legacy_parameters")
    @classmethod
    def _argon2_parameter_sets(cls, value: str) -> str:
        parse_argon2_parameter_sets(value)
        return value

    @field_validator("smtp_host")
    @classmethod
    def _smtp_host_name(cls, value: str | None) -> str | None:
        return None if value is None else mail_settings.check_host(value)

    @field_validator("smtp_sender")
    @classmethod
    def _sender_address(cls, value: str | None) -> str | None:
        return None if value is None else mail_settings.check_sender(value)

    @field_validator("smtp_password_file")
    @classmethod
    def _readable_password(cls, value: Path | None) -> Path | None:
        return None if value is None else mail_settings.check_secret_file(value)

    @field_validator("smtp_ca_file")
    @classmethod
    def _certificates(cls, value: Path | None) -> Path | None:
        return None if value is None else mail_settings.check_ca_file(value)

    @model_validator(mode="after")
    def _smtp_settings_agree(self) -> Settings:
        problems = mail_settings.smtp_problems(
            smtp=self.notifier is NotifierBackend.SMTP, host=self.smtp_host, local_hosts=LOCAL_HOSTS,
            plain=self.smtp_security is SmtpSecurity.NONE, user=self.smtp_user,
            password=self.smtp_password is not None, password_file=self.smtp_password_file is not None,
            sender=self.smtp_sender)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or {SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465,
                                  SmtpSecurity.NONE: 25}[self.smtp_security]

    @property
    def argon2_legacy(self) -> list[tuple[int, int, int]]:
        return parse_argon2_parameter_sets(self.argon2_legacy_parameters)

    @property
    def class_limits(self) -> dict[str, int]:
        return parse_class_limits(self.device_class_limits)

    @field_validator("key_encryption_key")
    @classmethod
    def _thirty_two_bytes_of_base64(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(decode_key_encryption_key(value)) != 32:
            raise ValueError("must be the base64 of 32 random bytes")
        return value


# The classes a live session may count under (CITYLOGIN_DEVICE_CLASS_LIMITS): a registered device's four
# (devices.models.DeviceClass), and "tv", a device-flow app's screen, which is no registered device.
DEVICE_CLASSES = ("mobile", "tablet", "desktop", "other", "tv")


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_local_dynamodb(endpoint_url: str | None, local: Any = None) -> bool:
    """Whether the DynamoDB at `endpoint_url` is a DynamoDB Local (CITYLOGIN_DYNAMODB_LOCAL, a
    bool or its text; when unset, an endpoint on this machine is one). No endpoint: Amazon DynamoDB."""
    if not endpoint_url:
        return False
    if local is not None and local != "":
        return TypeAdapter(bool).validate_python(local)
    return (urlsplit(endpoint_url).hostname or "") in LOCAL_HOSTS


def parse_class_limits(value: str) -> dict[str, int]:
    """"mobile=1, desktop=2" -> {"mobile": 1, "desktop": 2}; ValueError names what is wrong."""
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, count = (x.strip() for x in part.partition("="))
        if name not in DEVICE_CLASSES:
            raise ValueError(f"unknown device class {name!r}: use {', '.join(DEVICE_CLASSES)}")
        if not count.isdigit() or int(count) < 1 or name in limits:
            raise ValueError(f"{part!r}: write each class once as class=N with N >= 1")
        limits[name] = int(count)
    return limits


def parse_argon2_parameter_sets(value: str) -> list[tuple[int, int, int]]:
    """"t=3,m=65536,p=4; t=2,m=19456,p=1" -> [(3, 65536, 4), (2, 19456, 1)]; ValueError names what is wrong."""
    sets = []
    for part in filter(None, (p.strip() for p in value.split(";"))):
        fields = dict(f.strip().partition("=")[::2] for f in part.split(","))
        if set(fields) != {"t", "m", "p"} or not all(v.strip().isdigit() for v in fields.values()):
            raise ValueError(f"{part!r}: write each set as t=<passes>,m=<KiB>,p=<lanes>")
        t, m, p = (int(fields[k]) for k in "tmp")
        if t < 1 or m < 8 * p or p < 1:
            raise ValueError(f"{part!r}: not Argon2id parameters (t >= 1, p >= 1, m >= 8p KiB)")
        sets.append((t, m, p))
    return sets


def decode_key_encryption_key(value: SecretStr) -> bytes:
    """The raw bytes of CITYLOGIN_KEY_ENCRYPTION_KEY (standard or URL-safe base64); b"" if not base64."""
    text = "".join(value.get_secret_value().split())
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return b""


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, info in Settings.model_fields.items():
        raw = environ.get(env_name(field))
        if raw is None:
            continue
        raw = raw.strip()
        if field in ("cors_origins", "passkey_origins"):
            values[field] = [o.strip() for o in raw.split(",") if o.strip()]
        elif raw == "" and info.default is None:
            values[field] = None
        else:
            values[field] = raw
    return values


def load_settings(test_config: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then CITYLOGIN_* variables, then `test_config` (keys are field names)."""
    values = _from_environment(os.environ if environ is None else environ)
    values.update({k.lower(): v for k, v in (test_config or {}).items()})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a rule between settings: its message names them
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            problems.append(_problem(str(err["loc"][0]), err["type"], str(err["msg"])))
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


# What a good value of each setting checked by a regular expression (a `pattern`) looks like: pydantic's
# own message would print the expression, which says nothing to an operator. The value is not repeated
# (a setting may be a secret). tests/common/test_config_errors.py checks every pattern has its sentence.
GOOD_VALUES = {
    "public_url": "must be the http:// or https:// address people open the web UI at, with no spaces, query "
                  "(?) or fragment (#), e.g. https://login.example.com",
}


def _problem(field_name: str, kind: str, message: str) -> str:
    if kind == "string_pattern_mismatch":
        return f"{env_name(field_name)} {GOOD_VALUES[field_name]}"
    return f"{env_name(field_name)}: {message}"
