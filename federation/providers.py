"""Operators' upstream providers (SPEC §16): add, change, remove, read; and the client secret the token
endpoint is called with. The same functions serve `citylogin idp` and the admin API.

The client secret (for Apple, the private key citylogin signs its JWT client secret with) is sealed under the
key-encryption key, bound to the provider's name and the secret's kind, and opened only to call the
provider's token endpoint: it is in no record's repr, log line, audit line or answer."""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast, get_args

from common.errors import Conflict, ErrorCode, FieldKind, InvalidField, NotFound
from common.runtime.context import AppContext
from common.slots import Slot
from common.timefmt import iso
from common.web.audit import AuditEvent, audit
from federation import provider_checks as checks
from federation.apple_secret import AppleSecrets
from federation.models import Preset, ProviderRecord, Signup
from federation.presets import PRESETS
from federation.provider_store import ProviderChanged, ProviderMissing, ProviderStore, ProviderTaken

# The enabled providers are read on every sign-in page: each process keeps its list this long. A change made
# by this process is seen at once; one made elsewhere (the CLI, another host) within LIST_SECONDS.
LIST_SECONDS = 5.0
_CHANGE_ATTEMPTS = 5  # a change racing others is computed again from the record as it then is


class IdpNotFound(NotFound):
    code, detail = ErrorCode.IDP_NOT_FOUND, "No such sign-in provider."


class IdpExists(Conflict):
    code, detail = ErrorCode.IDP_EXISTS, "A sign-in provider of that name exists already."


class IdpChanged(Conflict):
    code, detail = ErrorCode.IDP_CHANGED, "The sign-in provider was changed meanwhile: send the change again."


@dataclass(frozen=True)
class ProviderFields:
    """What an operator gives of a provider; None: not given (on a change: as it is)."""

    issuer: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    apple_private_key: str | None = field(default=None, repr=False)
    apple_team_id: str | None = None
    apple_key_id: str | None = None
    scope: str | None = None
    signup: str | None = None
    display_name: str | None = None
    enabled: bool | None = None


class _ListCache:
    def __init__(self) -> None:
        self.lock, self.until, self.providers = threading.Lock(), 0.0, list[ProviderRecord]()

    def forget(self) -> None:
        with self.lock:
            self.until = 0.0


_LIST: Slot[_ListCache] = Slot("federation.providers.list")
_APPLE: Slot[AppleSecrets] = Slot("federation.providers.apple_secrets")


def _store(ctx: AppContext) -> ProviderStore:
    return ProviderStore(ctx.dynamodb, ctx.tables.apps)


def _changed(ctx: AppContext) -> None:
    ctx.slots.get_or_make(_LIST, _ListCache).forget()


def secret_identity(name: str, *, apple: bool) -> str:
    """What a provider's sealed secret is bound to (GCM associated data, KMS encryption context): moved to
    another provider's record, or read as the other kind of secret, it does not open."""
    return f"citylogin-upstream-provider:{name}#{'apple-key' if apple else 'client-secret'}"


# --- reading ----------------------------------------------------------------------------------------------

def get_provider(ctx: AppContext, name: str, *, include_disabled: bool = False) -> ProviderRecord:
    """The provider (read strongly consistent); 404 idp_not_found if there is none, or it is disabled and
    `include_disabled` is false."""
    provider = _store(ctx).get(name) if checks.NAME.fullmatch(name) else None
    if provider is None or not (provider.enabled or include_disabled):
        raise IdpNotFound()
    return provider


def list_providers(ctx: AppContext, *, include_disabled: bool = False) -> list[ProviderRecord]:
    """The providers by name: the enabled ones from this process's copy (at most LIST_SECONDS old), or every
    one read now."""
    if include_disabled:
        return sorted(_store(ctx).list(), key=lambda provider: provider.name)
    cache = ctx.slots.get_or_make(_LIST, _ListCache)
    with cache.lock:
        if time.monotonic() >= cache.until:
            cache.providers = sorted((p for p in _store(ctx).list() if p.enabled), key=lambda p: p.name)
            cache.until = time.monotonic() + LIST_SECONDS
        return list(cache.providers)


def client_secret(ctx: AppContext, provider: ProviderRecord) -> str:
    """The secret the provider's token endpoint takes: the operator's, opened; for Apple, a JWT signed with
    the operator's key (apple_secret), renewed long before it expires."""
    apple = PRESETS[provider.preset].jwt_client_secret
    opened = ctx.key_ring.encryptor.open(provider.sealed_secret, identity=secret_identity(provider.name, apple=apple))
    if not apple:
        return opened.decode()
    return ctx.slots.get_or_make(_APPLE, AppleSecrets).secret(provider, private_key_pem=opened.decode(),
                                                              now=ctx.epoch())


def provider_view(ctx: AppContext, provider: ProviderRecord) -> dict[str, Any]:
    """The provider as an operator sees it: whether a secret is set, never the secret; and the redirect URI
    to register at the provider."""
    view = {name: value for name, value in dataclasses.asdict(provider).items() if name != "sealed_secret"}
    secret_field = "apple_private_key" if PRESETS[provider.preset].jwt_client_secret else "client_secret"
    view[secret_field] = "set" if provider.sealed_secret else "not set"
    if ctx.settings.public_url:
        view["redirect_uri"] = f"{ctx.settings.public_url.rstrip('/')}/federation/{provider.name}/callback"
    return view


# --- changes ----------------------------------------------------------------------------------------------

def add_provider(ctx: AppContext, *, name: str, client_id: str, preset: str = "generic", issuer: str | None = None,
                 client_secret: str | None = None, apple_private_key: str | None = None,
                 apple_team_id: str | None = None, apple_key_id: str | None = None, scope: str | None = None,
                 signup: str = "allow", display_name: str | None = None, enabled: bool = True) -> ProviderRecord:
    """A new provider, its preset's defaults filled in where nothing is given; 409 idp_exists if the name is taken."""
    kind = _preset(preset)
    now = iso(ctx.now())
    base = ProviderRecord(name=checks.name(name), display_name=PRESETS[kind].display_name or name, preset=kind,
                          issuer=PRESETS[kind].issuer or "", client_id="", scope=PRESETS[kind].scope,
                          created_at=now, updated_at=now, version=1)
    fields = ProviderFields(issuer=issuer, client_id=client_id, client_secret=client_secret,
                            apple_private_key=apple_private_key, apple_team_id=apple_team_id,
                            apple_key_id=apple_key_id, scope=scope, signup=signup, display_name=display_name,
                            enabled=enabled)
    provider = _complete(_applied(ctx, base, fields))
    try:
        _store(ctx).create(provider)
    except ProviderTaken:
        raise IdpExists() from None
    _changed(ctx)
    audit(AuditEvent.IDP_ADDED, provider=provider.name, preset=provider.preset, issuer=provider.issuer)
    return provider


def update_provider(ctx: AppContext, *, name: str, issuer: str | None = None, client_id: str | None = None,
                    client_secret: str | None = None, apple_private_key: str | None = None,
                    apple_team_id: str | None = None, apple_key_id: str | None = None, scope: str | None = None,
                    signup: str | None = None, display_name: str | None = None,
                    enabled: bool | None = None) -> ProviderRecord:
    """The fields given change, the others stay; the preset never changes (add another provider)."""
    fields = ProviderFields(issuer=issuer, client_id=client_id, client_secret=client_secret,
                            apple_private_key=apple_private_key, apple_team_id=apple_team_id,
                            apple_key_id=apple_key_id, scope=scope, signup=signup, display_name=display_name,
                            enabled=enabled)
    for _ in range(_CHANGE_ATTEMPTS):
        read = get_provider(ctx, name, include_disabled=True)
        changed = dataclasses.replace(_applied(ctx, read, fields), version=read.version + 1,
                                      updated_at=iso(ctx.now()))
        try:
            _store(ctx).replace(_complete(changed), read_version=read.version)
        except ProviderMissing:
            raise IdpNotFound() from None
        except ProviderChanged:
            continue
        _changed(ctx)
        audit(AuditEvent.IDP_UPDATED, provider=name, changed=_given(fields))
        return changed
    raise IdpChanged()


def remove_provider(ctx: AppContext, *, name: str) -> None:
    """The provider goes; identities linked through it stay linked to their accounts (by issuer and sub)."""
    if not checks.NAME.fullmatch(name):
        raise IdpNotFound()
    try:
        _store(ctx).delete(name)
    except ProviderMissing:
        raise IdpNotFound() from None
    _changed(ctx)
    audit(AuditEvent.IDP_REMOVED, provider=name)


def _preset(value: str) -> Preset:
    if value not in PRESETS:
        raise InvalidField("preset", f"preset: one of {', '.join(PRESETS)}.")
    return cast("Preset", value)


def _given(fields: ProviderFields) -> list[str]:
    """The names of the fields a change gives (for the audit line: names, never values)."""
    return [name for name, value in dataclasses.asdict(fields).items() if value is not None]


def _applied(ctx: AppContext, record: ProviderRecord, fields: ProviderFields) -> ProviderRecord:
    """`record` with each given field checked and put in; a given secret sealed."""
    apple = PRESETS[record.preset].jwt_client_secret
    if apple and fields.client_secret is not None:
        raise InvalidField("client_secret", "client_secret: Apple takes the private key (apple_private_key), "
                                            "from which citylogin makes its client secret.")
    if not apple and (fields.apple_private_key, fields.apple_team_id, fields.apple_key_id) != (None, None, None):
        raise InvalidField("apple_private_key", "apple_private_key: only for the preset apple.")
    changes: dict[str, Any] = {}
    if fields.issuer is not None:
        changes["issuer"] = checks.issuer(fields.issuer, allow_http=ctx.settings.oidc_fetch_private_addresses)
    if fields.client_id is not None:
        changes["client_id"] = checks.client_id(fields.client_id)
    for name, check in (("scope", checks.scope), ("display_name", checks.display_name), ("signup", checks.signup)):
        if (value := getattr(fields, name)) is not None:
            changes[name] = check(value)
    for name in ("apple_team_id", "apple_key_id"):
        if (value := getattr(fields, name)) is not None:
            changes[name] = checks.apple_id(value, field=name)
    if fields.enabled is not None:
        changes["enabled"] = bool(fields.enabled)
    secret = checks.apple_private_key(fields.apple_private_key) if fields.apple_private_key is not None else (
        checks.secret(fields.client_secret) if fields.client_secret is not None else None)
    if secret is not None:
        changes["sealed_secret"] = ctx.key_ring.encryptor.seal(
            secret.encode(), identity=secret_identity(record.name, apple=apple))
    return dataclasses.replace(record, **changes)


def _complete(provider: ProviderRecord) -> ProviderRecord:
    """InvalidField naming the first thing a provider cannot do without."""
    apple = PRESETS[provider.preset].jwt_client_secret
    needed: list[tuple[str, object]] = [("issuer", provider.issuer), ("client_id", provider.client_id),
              ("apple_private_key" if apple else "client_secret", provider.sealed_secret)]
    if apple:
        needed += [("apple_team_id", provider.apple_team_id), ("apple_key_id", provider.apple_key_id)]
    for name, value in needed:
        if not value:
            raise InvalidField(name, f"{name}: required for this provider.", kind=FieldKind.EMPTY)
    if provider.signup not in get_args(Signup):
        raise InvalidField("signup", "signup: allow or deny.")
    return provider
