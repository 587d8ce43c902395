"""Bringing the people a service already has (SPEC §17): the rows a reader made from a Keycloak, Auth0 or CSV
export become accounts, read top-down: rows gathered into batches (no item twice in one), each batch read in
one BatchGetItem (the accounts' users items and claims, so that a rerun finds what it wrote), decided row by
row (unchanged, to update, refused: a name another account holds, to create), and the new accounts written
in one TransactWriteItems (account by account when it is cancelled, so each row gets its own answer).

Never over a live account: every create is conditional. Identities the export had linked become §16 links
when their provider is configured here. No hash ever goes into the report, a log line or the audit."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Mapping

from accounts import user_service as users
from accounts.email_store import LINK_GENERATION
from accounts.import_rows import ImportedIdentity, ImportRow, RefusalReason, RowRefusal
from accounts.import_store import MAX_ENTRIES, AccountChange, Created, ImportStore, NewAccount, Taken
from accounts.models import UserRecord
from common.crypto.imported_hashes import scheme_key
from common.crypto.passwords import IMPORTED_PREFIX, is_imported
from common.database.batch_read import KeyRead, read_together
from common.keys.imported_schemes import record_schemes
from common.runtime.context import AppContext
from common.timefmt import iso
from common.web.audit import AuditEvent, audit
from federation import identities, providers
from federation.models import ProviderRecord, UpstreamIdentity
from federation.presets import TENANT_PLACEHOLDER

# Auth0 names the social connections its own way; each goes to the preset of that provider when one is
# configured here (and no --provider mapping or provider of the same name says otherwise).
AUTH0_PRESETS = {"google-oauth2": "google", "apple": "apple", "windowslive": "microsoft"}
UPDATE_ATTEMPTS = 3  # an account changed in citylogin between the read and the update: read it again


class UnknownProvider(ValueError):
    """A --provider SOURCE=NAME mapping names a provider that is not configured here."""


@dataclass(frozen=True)
class ImportOptions:
    source: str  # the format: keycloak, auth0 or csv
    dry_run: bool = False
    update: bool = False
    providers: Mapping[str, str] = field(default_factory=dict)  # the source's provider name -> ours


@dataclass(frozen=True)
class RowNote:
    where: str
    note: str


@dataclass
class ImportReport:
    """What the import did (with dry_run: would do). `refused` and `notes` name rows by where they are."""

    format: str
    dry_run: bool
    update: bool
    read: int = 0
    imported: int = 0
    unchanged: int = 0
    updated: int = 0
    linked: int = 0
    refused: list[RowRefusal] = field(default_factory=list)
    notes: list[RowNote] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic, repr=False)

    def counts(self) -> dict[str, int]:
        return {"read": self.read, "imported": self.imported, "unchanged": self.unchanged, "updated": self.updated,
                "refused": len(self.refused), "linked": self.linked, "notes": len(self.notes)}

    def summary(self) -> dict[str, Any]:
        """The report as `--json` prints it."""
        return {"format": self.format, "dry_run": self.dry_run, "update": self.update, **self.counts(),
                "refused_rows": [{"where": r.where, "reason": str(r.reason), "detail": r.detail} for r in self.refused],
                "row_notes": [{"where": n.where, "note": n.note} for n in self.notes]}

    def accounts_per_second(self) -> float:
        done = self.imported + self.unchanged + self.updated
        return done / max(time.monotonic() - self.started, 1e-6)

    def refuse(self, row: ImportRow, reason: RefusalReason, detail: str) -> None:
        self.refused.append(RowRefusal(where=row.where, reason=reason, detail=detail))


@dataclass(frozen=True)
class _Planned:
    """A row with the links it brings (the source's identity and ours) and what it reads and writes."""

    row: ImportRow
    links: tuple[tuple[ImportedIdentity, UpstreamIdentity], ...]

    def keys(self) -> list[str]:
        return [self.row.user_uuid, *_claims(self.row), *(_link(i) for _, i in self.links)]


def import_accounts(ctx: AppContext, *, rows: Iterable[ImportRow | RowRefusal], options: ImportOptions,
                    file_sha256: str, progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Import `rows` (a reader's, in file order) and write one audit line; a FileRefused from the reader
    propagates before anything of the file was written if it comes before the first row."""
    report = ImportReport(format=options.source, dry_run=options.dry_run, update=options.update)
    batch = _Batch(ctx, options=options, report=report)
    linker = _Linker(ctx, options, report)
    for row in _counted(rows, report):
        planned = linker.plan(row)
        if not batch.fits(planned):
            batch.run()
            if progress:
                progress(report)
        batch.add(planned)
    batch.run()
    if progress:
        progress(report)
    audit(AuditEvent.ACCOUNTS_IMPORTED, file_sha256=file_sha256, format=options.source, dry_run=options.dry_run,
          update=options.update, **report.counts())
    return report


def _counted(rows: Iterable[ImportRow | RowRefusal], report: ImportReport) -> Iterator[ImportRow]:
    """The rows to write; the readers' refusals go into the report, and each row's notes."""
    for row in rows:
        report.read += 1
        if isinstance(row, RowRefusal):
            report.refused.append(row)
            continue
        report.notes += [RowNote(where=row.where, note=note) for note in row.notes]
        yield row


# --- identities: a §16 link for each the export had, through a provider configured here ------------------

class _Linker:
    def __init__(self, ctx: AppContext, options: ImportOptions, report: ImportReport) -> None:
        self.options, self.report = options, report
        self.configured = {p.name: p for p in providers.list_providers(ctx, include_disabled=True)}
        unknown = sorted(name for name in options.providers.values() if name not in self.configured)
        if unknown:
            raise UnknownProvider(f"no provider named {', '.join(map(repr, unknown))} is configured "
                                  "(citylogin idp list)")

    def provider_for(self, source_provider: str) -> ProviderRecord | None:
        """--provider's mapping, else the provider of the same name, else (Auth0) the one of its preset."""
        if source_provider in self.options.providers:
            return self.configured[self.options.providers[source_provider]]
        if source_provider in self.configured:
            return self.configured[source_provider]
        preset = AUTH0_PRESETS.get(source_provider) if self.options.source == "auth0" else None
        candidates = [p for p in self.configured.values() if preset and p.preset == preset]
        return candidates[0] if len(candidates) == 1 else None

    def plan(self, row: ImportRow) -> _Planned:
        links = []
        for source_identity in row.identities:
            provider = self.provider_for(source_identity.provider)
            if provider is None:
                self.report.notes.append(RowNote(row.where, f"identity of {source_identity.provider!r} not linked: "
                                                            "no such provider is configured (--provider)"))
            elif TENANT_PLACEHOLDER in provider.issuer:
                self.report.notes.append(RowNote(row.where, f"identity of {source_identity.provider!r} not linked: "
                                                            f"provider {provider.name!r} has no single issuer"))
            else:
                links.append((source_identity, UpstreamIdentity(provider=provider.name, issuer=provider.issuer,
                                                                sub=source_identity.sub,
                                                                email=source_identity.email or None)))
        return _Planned(row=row, links=tuple(links))


def _link(identity: UpstreamIdentity) -> str:
    return "identity#" + identities.link_id(identity.issuer, identity.sub)


def _other_than(claim: str) -> Callable[[UpstreamIdentity], bool]:
    return lambda identity: _link(identity) != claim


def _claims(row: ImportRow) -> list[str]:
    from accounts.user_store import email_claim, username_claim
    return [username_claim(row.username)] + ([email_claim(row.email)] if row.email else [])


# --- one batch: read together, decide each row, write together --------------------------------------------

class _Batch:
    def __init__(self, ctx: AppContext, *, options: ImportOptions, report: ImportReport) -> None:
        self.ctx, self.options, self.report = ctx, options, report
        self.store = ImportStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims)
        self.rows: list[_Planned] = []
        self.keys: set[str] = set()
        self.recorded_schemes: set[str] = set()

    def fits(self, planned: _Planned) -> bool:
        """Whether the row joins this batch: its reads and entries within the limits, none of its items
        already in it (a transaction may name an item once; the later row waits for the next batch)."""
        keys = planned.keys()
        return len(self.keys) + len(keys) <= MAX_ENTRIES and not self.keys.intersection(keys)

    def add(self, planned: _Planned) -> None:
        self.rows.append(planned)
        self.keys.update(planned.keys())

    def run(self) -> None:
        rows, self.rows, self.keys = self.rows, [], set()
        rows = self._with_recorded_schemes(rows)
        if not rows:
            return
        found = read_together(self.ctx.dynamodb, self._reads(rows))
        to_create = [account for planned in rows if (account := self._decide(planned, found)) is not None]
        if to_create and not self.options.dry_run:
            self._create(to_create)
        elif to_create:
            self._count_created(to_create)

    def _with_recorded_schemes(self, rows: list[_Planned]) -> list[_Planned]:
        """The rows whose hash's scheme key is recorded in the key ring (every process learns it there, so
        that a check of an imported hash costs what any other check costs); the others refused."""
        keys = {row.row.user_uuid: scheme_key_of(row.row.password_hash) for row in rows}
        wanted = {key for key in keys.values() if key} - self.recorded_schemes
        if wanted and not self.options.dry_run:
            self.recorded_schemes |= record_scheme_keys(self.ctx, wanted)
        elif wanted:
            self.recorded_schemes |= wanted
        kept = []
        for planned in rows:
            key = keys[planned.row.user_uuid]
            if key == "":
                self.report.refuse(planned.row, RefusalReason.INVALID_HASH, "password_hash: not a hash citylogin reads")
            elif key and key not in self.recorded_schemes:
                self.report.refuse(planned.row, RefusalReason.INVALID_HASH,
                                   f"password_hash: its scheme's cost ({key}) is beyond what citylogin checks")
            else:
                kept.append(planned)
        return kept

    def _reads(self, rows: list[_Planned]) -> dict[str, KeyRead[Any]]:
        reads: dict[str, KeyRead[Any]] = {}
        for planned in rows:
            reads[planned.row.user_uuid] = self.store.user_item_read(planned.row.user_uuid)
            for claim in planned.keys()[1:]:
                reads[claim] = self.store.claim_owner_read(claim)
        return reads

    def _decide(self, planned: _Planned, found: dict[str, Any]) -> tuple[_Planned, NewAccount] | None:
        """Count the row as unchanged, updated or refused; or return the account to create."""
        row, stored = planned.row, found[planned.row.user_uuid]
        if stored is not None:
            self._existing(row, stored)
            return None
        claims = _claims(row)
        for which, claim in zip(("username", "email"), claims, strict=False):
            if found[claim] not in (None, row.user_uuid):
                reason = RefusalReason.USERNAME_TAKEN if which == "username" else RefusalReason.EMAIL_TAKEN
                self.report.refuse(row, reason, f"{which}: another account holds it")
                return None
        planned = self._free_links(planned, lambda identity: found[_link(identity)] is None)
        return planned, self._account(planned)

    def _free_links(self, planned: _Planned, free: Callable[[UpstreamIdentity], bool]) -> _Planned:
        kept = tuple(link for link in planned.links if free(link[1]))
        for source_identity, _ in set(planned.links) - set(kept):
            self.report.notes.append(RowNote(planned.row.where, f"identity of {source_identity.provider!r} not "
                                                                "linked: it is linked to another account"))
        return replace(planned, links=kept)

    def _account(self, planned: _Planned) -> NewAccount:
        row, now = planned.row, iso(self.ctx.now())
        user = UserRecord(user_uuid=row.user_uuid, username=row.username, email=row.email,
                          password_hash=row.password_hash, created_at=row.created_at or now,
                          locked=True if row.disabled else None, locale=row.locale, email_verified=row.email_verified,
                          imported_from=row.source, imported_at=now)
        attributes = asdict(user)
        entries = {identities.link_id(i.issuer, i.sub): identities.map_entry(i, linked_at=now)
                   for _, i in planned.links}
        if entries:
            attributes["identities"] = {link: {k: v for k, v in entry.items() if v is not None}
                                        for link, entry in entries.items()}
        extra = tuple((_link(identity), identities.claim_write(self.ctx, user_uuid=row.user_uuid,
                                                               identity=identity).item)
                      for _, identity in planned.links)
        return NewAccount(user_uuid=row.user_uuid, username=row.username, email=row.email, attributes=attributes,
                          extra=extra)

    # --- creating ------------------------------------------------------------------------------------

    def _count_created(self, accounts: list[tuple[_Planned, NewAccount]]) -> None:
        for _, account in accounts:
            self.report.imported += 1
            self.report.linked += len(account.extra)

    def _create(self, accounts: list[tuple[_Planned, NewAccount]]) -> None:
        if self.store.create_together([account for _, account in accounts]):
            self._count_created(accounts)
            return
        for planned, account in accounts:  # cancelled: each on its own, for its own answer
            self._create_one(planned, account)

    def _create_one(self, planned: _Planned, account: NewAccount) -> None:
        while True:
            outcome = self.store.create_one(account)
            if isinstance(outcome, Created) and not outcome.exists:
                self._count_created([(planned, account)])
            elif isinstance(outcome, Created):  # written meanwhile (another process, an earlier attempt)
                self._existing_now(planned.row)
            elif outcome.which in ("username", "email"):
                reason = RefusalReason.USERNAME_TAKEN if outcome.which == "username" else RefusalReason.EMAIL_TAKEN
                self.report.refuse(planned.row, reason, f"{outcome.which}: another account holds it")
            else:  # an identity linked to another account meanwhile: the account without that link
                planned = self._free_links(planned, _other_than(outcome.which))
                account = self._account(planned)
                continue
            return

    # --- existing accounts: unchanged, or --update ---------------------------------------------------

    def _existing_now(self, row: ImportRow) -> None:
        found = read_together(self.ctx.dynamodb, {"user": self.store.user_item_read(row.user_uuid)})
        self._existing(row, found["user"])

    def _existing(self, row: ImportRow, stored: dict[str, Any] | None) -> None:
        if stored is None or "deleting_since" in stored:
            self.report.notes.append(RowNote(row.where, "its account is being deleted: not imported again"))
            self.report.unchanged += 1
        elif not self.options.update:
            self.report.unchanged += 1
        else:
            self._update(row, stored)

    def _update(self, row: ImportRow, stored: dict[str, Any]) -> None:
        """--update: what differs, each change conditional on the item as read (read again if it moved)."""
        for _ in range(UPDATE_ATTEMPTS):
            change, relock = account_change(row, stored), row.disabled != bool(stored.get("locked"))
            if change is None and not relock:
                self.report.unchanged += 1
                return
            outcome = None if change is None or self.options.dry_run else self.store.update(change)
            if isinstance(outcome, Taken):
                self.report.refuse(row, RefusalReason.EMAIL_TAKEN, "email: another account holds it")
                return
            if change is None or self.options.dry_run or outcome is not None:
                if relock and not self.options.dry_run:
                    (users.lock_account if row.disabled else users.unlock_account)(self.ctx, user_uuid=row.user_uuid)
                self.report.updated += 1
                return
            stored = read_together(self.ctx.dynamodb, {"user": self.store.user_item_read(row.user_uuid)})["user"]
            if stored is None or "deleting_since" in stored:
                self._existing(row, stored)
                return
        self.report.notes.append(RowNote(row.where, "changed in citylogin while it was updated: left as it is"))
        self.report.unchanged += 1


def account_change(row: ImportRow, stored: dict[str, Any]) -> AccountChange | None:
    """What --update sets on an account the import wrote before: what differs from the row, the hash only
    while the stored one is still imported (or there is none), never a password set in citylogin. None if
    nothing differs (the lock, told apart by the caller, aside)."""
    changes: dict[str, Any] = {}
    expected: dict[str, Any] = {"imported_from": row.source}
    old_email, new_email = stored.get("email", ""), None
    if row.email != old_email:
        changes.update(email=row.email, **{LINK_GENERATION: stored.get(LINK_GENERATION, 0) + 1})
        expected["email"], new_email = old_email, row.email
    for attribute, value in (("email_verified", row.email_verified), ("locale", row.locale)):
        if stored.get(attribute, {"locale": "en"}.get(attribute, False)) != value:
            changes[attribute] = value
    stored_hash = stored.get("password_hash", "")
    if row.password_hash and row.password_hash != stored_hash and (not stored_hash or is_imported(stored_hash)):
        changes["password_hash"], expected["password_hash"] = row.password_hash, stored_hash
    if not changes:
        return None
    return AccountChange(user_uuid=row.user_uuid, changes=changes, expected=expected, old_email=old_email,
                         new_email=new_email)


# --- the hash schemes in use (common/keys/imported_schemes) ---------------------------------------------

def scheme_key_of(password_hash: str) -> str | None:
    """The cost class of an imported hash ("bcrypt$12", ...); None for a row without a password, "" for a
    hash that does not parse (the readers refuse those; a row built otherwise is refused here)."""
    if not password_hash.startswith(IMPORTED_PREFIX):
        return None
    try:
        return scheme_key(password_hash[len(IMPORTED_PREFIX):])
    except ValueError:  # UnknownScheme, InvalidHash: messages never hold the hash
        return ""


def record_scheme_keys(ctx: AppContext, keys: set[str]) -> set[str]:
    """Record `keys` in the key ring before any account of them is written; the keys recorded (one beyond
    the bounds is not, and its rows are refused)."""
    refused = record_schemes(ctx.dynamodb, ctx.tables.key_ring, sorted(keys), encryptor=ctx.key_ring.encryptor)
    return keys - set(refused)
