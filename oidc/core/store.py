"""The OpenID Provider's items: pushed authorization requests, authorization requests waiting for the
person and the redemption marks of those whose code was redeemed (in the one_time_tokens table, keyed by
a digest; codes themselves are sealed, oidc.token.codes), and each app's grant on a session (oidc_grants)."""
from __future__ import annotations

import json
from typing import Any


from common.crypto.tokens import token_digest
from common.database import dynamo, item_listing
from common.database.batch_read import KeyRead
from common.database.one_time_tokens import OneTimeTokenStore
from oidc.core.models import Grant, WaitingRequest

REQUEST_KIND, PAR_KIND, REDEEMED_KIND = "oidc_request", "oidc_par", "oidc_redeemed"
BROWSER_DIGEST = "browser_digest"  # a waiting request's: the digest of its browser's cookie
# A grant is kept this long past its session's latest end: Back-Channel Logout retries for as long.
GRANT_KEPT_SECONDS = 24 * 3600


class CodeNotSpent(dynamo.StoreRefusal):
    """The write that uses a code up was refused: a code of its authorization request was redeemed before."""

    def __init__(self) -> None:
        super().__init__("code not spent")


class RequestStore:
    """Authorization requests between /oidc/authorize and the sign-in page's answer."""

    def __init__(self, tokens: OneTimeTokenStore) -> None:
        self.tokens = tokens

    def create_item(self, *, digest: str, params: dict[str, str], client_id: str, browser_digest: str, now: int,
                    ttl: int) -> dict[str, Any]:
        """A TransactWriteItems entry keeping the request (with a pushed request's spending and the count
        of its address's requests), bound to its browser by the digest of that browser's cookie."""
        return self.tokens.create_item(digest=digest, kind=REQUEST_KIND, expires_epoch=now + ttl,
                                       data={"params": json.dumps(params), "client_id": client_id,
                                             "created_epoch": now, BROWSER_DIGEST: browser_digest})

    def get(self, *, digest: str, now: int) -> WaitingRequest | None:
        """The request while it waits."""
        return _waiting(self.tokens.get(digest=digest, kind=REQUEST_KIND, now=now))

    def read(self, *, digest: str, now: int) -> KeyRead[WaitingRequest | None]:
        """`get` for a caller's batch read."""
        read = self.tokens.read(digest=digest, kind=REQUEST_KIND, now=now)
        return KeyRead(read.table, read.key, lambda item: _waiting(read.parse(item)))

    def finish(self, *, digest: str, now: int) -> bool:
        """Use the request up: of parallel answers to one request, one goes on."""
        return self.tokens.consume(digest=digest, kind=REQUEST_KIND, now=now) is not None

    def redeem_item(self, *, digest: str, session_id: str, user_uuid: str, keep_until: int) -> dict[str, Any]:
        """A TransactWriteItems entry (beside GrantStore.redeem_item's) making the request's redemption mark,
        an item of its own, naming the session a redeemed code went to: refused if a code of the request was
        redeemed before, on any session (a replay, a parallel redemption that came first, or a code that
        another browser got for the same request). Apart from the request's item, so that nothing done to
        the request (its cancellation, its expiry) takes the mark; a Put, the cheapest conditional entry. It
        outlives every code of the request (`keep_until`) and names the person, so that the account's
        deletion takes it."""
        mark = {"token_digest": _mark_digest(digest), "kind": REDEEMED_KIND, "redeemed_session": session_id,
                "user_uuid": user_uuid, "expires_epoch": keep_until, dynamo.TTL_ATTRIBUTE: keep_until}
        return {"Put": {"TableName": self.tokens.table, "Item": dynamo.to_item(mark),
                        "ConditionExpression": "attribute_not_exists(token_digest)"}}

    def redeemed_session(self, *, digest: str) -> str | None:
        """The session a code of the request was redeemed on (strongly consistent), None before any was."""
        item = self.tokens.client.get_item(TableName=self.tokens.table,
                                           Key=OneTimeTokenStore.key(_mark_digest(digest)),
                                           ConsistentRead=True).get("Item") or {}
        return (item.get("redeemed_session") or {}).get("S")


def _mark_digest(request_digest: str) -> str:
    """The key of a request's redemption mark: a digest of its own purpose, never a request's key."""
    return token_digest(request_digest, purpose=REDEEMED_KIND)


def _waiting(item: dict[str, Any] | None) -> WaitingRequest | None:
    if not item:
        return None
    return WaitingRequest(params=json.loads(item["params"]), asked_at=int(item["created_epoch"]),
                          browser_digest=item.get(BROWSER_DIGEST))


class PushedRequestStore:
    """Pushed authorization requests (RFC 9126) behind their one-time request_uri, kept for one client."""

    def __init__(self, tokens: OneTimeTokenStore) -> None:
        self.tokens = tokens

    def create_item(self, *, digest: str, params: dict[str, str], client_id: str,
                    expires_epoch: int) -> dict[str, Any]:
        """A TransactWriteItems entry keeping the request (beside the count of its address's requests)."""
        return self.tokens.create_item(digest=digest, kind=PAR_KIND, expires_epoch=expires_epoch,
                                       data={"params": json.dumps(params), "client_id": client_id})

    def get(self, *, digest: str, client_id: str, now: int) -> dict[str, str] | None:
        """The pushed parameters while `client_id`'s request waits; None for an unknown, expired or
        another client's one. Reading it changes nothing: spend_item uses it up."""
        item = self.tokens.get(digest=digest, kind=PAR_KIND, now=now)
        if item is None or item.get("client_id") != client_id:
            return None
        return json.loads(item["params"])

    def spend_item(self, *, digest: str, client_id: str, now: int) -> dict[str, Any]:
        """A TransactWriteItems entry using the request up, in the transaction that keeps the authorization
        request it stands for; refused unless it is still `client_id`'s live request (a parallel use came
        first, or it expired meanwhile)."""
        return {"Delete": {
            "TableName": self.tokens.table, "Key": OneTimeTokenStore.key(digest),
            "ConditionExpression": "attribute_exists(token_digest) AND #k = :k AND client_id = :client "
                                   "AND expires_epoch > :now",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":k": {"S": PAR_KIND}, ":client": {"S": client_id},
                                          ":now": {"N": str(now)}}}}


class GrantMoved(dynamo.StoreRefusal):
    """The grant's write was refused: it was rotated, replaced, revoked or removed meanwhile."""

    def __init__(self) -> None:
        super().__init__("grant moved")


# Written by a rotation or a revocation, never by a new grant (which clears them by replacing the row).
_LATER_FIELDS = frozenset({"rotated_gen", "rotated_epoch", "refresh_kid", "rotated_jkt", "revoked", "revoked_epoch"})
_KEY_FIELDS = frozenset({"session_id", "client_id"})
# When the person last ended the app's sign-in on the session (ms): signed it out, or withdrew its consent.
# A code given before then gives nothing (SPEC §14); every later grant of the app on the session keeps it.
PERSON_ENDED = "person_ended_ms"


class GrantStore:
    """Which apps hold tokens of which session (oidc_grants: session_id, client_id): whom to tell
    when the session ends (Back-Channel Logout), what `/oidc/revoke` or a replayed code ends, and the
    current generation of the app's rotating refresh token with its last rotation. A revoked grant
    keeps its row, marked, until the row expires: no token check counts it (`get`), and the back
    channel reads it (`record`) to know whether the app was told already."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def _key(self, session_id: str, client_id: str) -> dict[str, Any]:
        return {"session_id": {"S": session_id}, "client_id": {"S": client_id}}

    def redeem_item(self, grant: Grant, *, request_digest: str, now: int, expires_epoch: int, issued_ms: int,
                    replacing: str | None) -> dict[str, Any]:
        """A TransactWriteItems entry (beside the session's liveness check and the request's redemption
        mark, which makes a code good once) recording the grant a code of the authorization request
        `request_digest` gives: every field anew, which replaces the app's earlier grant on the session,
        revoked or not, and with it that one's refresh tokens and key. Refused (the row as it was comes
        with the refusal) unless the app's grant on the session is `replacing`, the live grant whose end
        the same transaction tells (None: there is none, or it was revoked and told), and unless the
        person ended the app's sign-in on the session (PERSON_ENDED, which a new grant keeps) only before
        the code was given, `issued_ms` (SPEC §14: what the person ended stays ended)."""
        fields = {k: v for k, v in vars(grant).items() if v is not None and k not in _LATER_FIELDS | _KEY_FIELDS}
        fields |= {"granted_epoch": now, "expires_epoch": expires_epoch, "request_digest": request_digest,
                   dynamo.TTL_ATTRIBUTE: expires_epoch + GRANT_KEPT_SECONDS}
        cleared = sorted(set(Grant.__dataclass_fields__) - set(fields) - _KEY_FIELDS)
        names = {f"#f{n}": name for n, name in enumerate([*fields, *cleared])}
        values = {f":f{n}": value for n, value in enumerate(dynamo.to_item(fields).values())}
        update = "SET " + ", ".join(f"#f{n} = :f{n}" for n in range(len(fields)))
        update += " REMOVE " + ", ".join(f"#f{n}" for n in range(len(fields), len(names)))
        names["#ended"], values[":issued"] = PERSON_ENDED, {"N": str(issued_ms)}
        condition = "(attribute_not_exists(#ended) OR #ended < :issued) AND "
        if replacing is None:
            condition += "(attribute_not_exists(grant_id) OR attribute_exists(revoked))"
        else:
            condition += "grant_id = :replacing AND attribute_not_exists(revoked)"
            values[":replacing"] = {"S": replacing}
        return {"Update": {"TableName": self.table, "Key": self._key(grant.session_id, grant.client_id),
                           "UpdateExpression": update, "ConditionExpression": condition,
                           "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                           "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def given_by(self, *, session_id: str, client_id: str) -> tuple[Grant | None, str | None]:
        """The app's live grant on the session and the authorization request its code came from
        (strongly consistent): (None, None) if there is none or it was revoked."""
        item = self.client.get_item(TableName=self.table, Key=self._key(session_id, client_id),
                                    ConsistentRead=True).get("Item")
        grant = None if item is None else _grant(item)
        if grant is None or not grant.live:
            return None, None
        return grant, (item.get("request_digest") or {}).get("S")

    def get(self, *, session_id: str, client_id: str) -> Grant | None:
        """The app's grant on the session while it holds (strongly consistent); None if there is none
        or it was revoked."""
        grant = self.record(session_id=session_id, client_id=client_id)
        return grant if grant is not None and grant.live else None

    def read(self, *, session_id: str, client_id: str) -> KeyRead[Grant | None]:
        """`get` for a caller's batch read."""
        return KeyRead(self.table, self._key(session_id, client_id),
                       lambda item: None if item is None or not (grant := _grant(item)).live else grant)

    def record(self, *, session_id: str, client_id: str) -> Grant | None:
        """The app's grant row on the session, revoked or not (strongly consistent)."""
        item = self.client.get_item(TableName=self.table, Key=self._key(session_id, client_id),
                                    ConsistentRead=True).get("Item")
        return None if item is None else _grant(item)

    def rotate_item(self, grant: Grant, *, generation: int, now: int, kid: str, jkt: str | None) -> dict[str, Any]:
        """A TransactWriteItems entry moving the grant's refresh token from `generation` to the next,
        recording the rotation (when, the refresh secret `kid`, the access token's key `jkt`) so a
        retry within the grace gets the same pair; refused if it moved on meanwhile, or the grant was
        replaced, revoked or removed."""
        values = {":next": {"N": str(generation + 1)}, ":gen": {"N": str(generation)},
                  ":grant": {"S": grant.grant_id}, ":now": {"N": str(now)}, ":kid": {"S": kid}}
        update = "SET refresh_gen = :next, rotated_gen = :next, rotated_epoch = :now, refresh_kid = :kid"
        if jkt:
            update += ", rotated_jkt = :jkt"
            values[":jkt"] = {"S": jkt}
        else:
            update += " REMOVE rotated_jkt"
        return {"Update": {
            "TableName": self.table, "Key": self._key(grant.session_id, grant.client_id),
            "UpdateExpression": update,
            "ConditionExpression": "refresh_gen = :gen AND grant_id = :grant AND attribute_not_exists(revoked)",
            "ExpressionAttributeValues": values}}

    def revoke_item(self, grant: Grant, *, reason: str, now_ms: int, by_person: bool = False) -> dict[str, Any]:
        """A TransactWriteItems entry marking the grant revoked for `reason` (the row stays until it
        expires), and `by_person`, the moment the person ended it (PERSON_ENDED); refused if it was revoked,
        replaced or removed meanwhile."""
        values = {":reason": {"S": reason}, ":now": {"N": str(now_ms // 1000)}, ":grant": {"S": grant.grant_id}}
        update = "SET revoked = :reason, revoked_epoch = :now"
        if by_person:
            update, values[":ms"] = update + f", {PERSON_ENDED} = :ms", {"N": str(now_ms)}
        return {"Update": {
            "TableName": self.table, "Key": self._key(grant.session_id, grant.client_id),
            "UpdateExpression": update,
            "ConditionExpression": "grant_id = :grant AND attribute_not_exists(revoked)",
            "ExpressionAttributeValues": values}}

    def live_of(self, session_id: str) -> list[Grant]:
        """The grants on the session that hold (strongly consistent): the apps signed in on it."""
        grants, start = [], None
        while True:
            args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "session_id = :s",
                                    "ExpressionAttributeValues": {":s": {"S": session_id}}, "ConsistentRead": True}
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            grants += [_grant(item) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return [grant for grant in grants if grant.live]

    def items_of(self, session_id: str) -> list[dict[str, Any]]:
        """Every grant on the session, revoked ones too, as stored (a person's data export)."""
        return item_listing.partition_items(self.client, self.table, partition=("session_id", session_id))

    def clients_of(self, session_id: str) -> list[str]:
        page = self.client.query(TableName=self.table, KeyConditionExpression="session_id = :s",
                                 ExpressionAttributeValues={":s": {"S": session_id}}, ConsistentRead=True)
        return [item["client_id"]["S"] for item in page["Items"]]

    def delete(self, *, session_id: str, client_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(session_id, client_id))


def _grant(item: dict[str, Any]) -> Grant:
    data = dynamo.from_item(item)
    return Grant(**{k: v for k, v in data.items() if k in Grant.__dataclass_fields__})
