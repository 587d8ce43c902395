"""The account's e-mail address: verification tokens and the move of its uniqueness claim
(SPEC §4, §8). Tokens are items of the one_time_tokens table keyed by their digest."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from accounts.user_store import email_claim
from common import dynamo

VERIFY_KIND = "verify_email"


class ClaimTaken(Exception):
    """Another account holds the new address's claim."""


class TokenRefused(Exception):
    """The token is unknown, used or expired."""


class AddressChanged(Exception):
    """The account's address (or the transaction's items) changed since it was read; read again."""


class EmailStore:
    def __init__(self, client, *, users_table: str, claims_table: str, tokens_table: str) -> None:
        self.client, self.users, self.claims, self.tokens = client, users_table, claims_table, tokens_table

    def token_put(self, *, digest: str, user_uuid: str, email: str, expires_epoch: int) -> dict[str, Any]:
        """A TransactWriteItems entry that stores a verification token of `email` (with its TTL)."""
        item = {"token_digest": digest, "kind": VERIFY_KIND, "expires_epoch": expires_epoch,
                dynamo.TTL_ATTRIBUTE: expires_epoch, "user_uuid": user_uuid, "email": email}
        return {"Put": {"TableName": self.tokens, "Item": dynamo.to_item(item),
                        "ConditionExpression": "attribute_not_exists(token_digest)"}}

    def write_token(self, token_put: dict[str, Any]) -> None:
        """Store a token on its own (outside a caller's transaction)."""
        self.client.transact_write_items(TransactItems=[token_put])

    def pending_token(self, digest: str) -> dict[str, Any] | None:
        """The verification token item (expired ones too: the transaction's condition refuses them)."""
        item = dynamo.from_item(self.client.get_item(TableName=self.tokens, Key={"token_digest": {"S": digest}},
                                                     ConsistentRead=True).get("Item"))
        return item if item and item.get("kind") == VERIFY_KIND else None

    def password_hash(self, user_uuid: str) -> str | None:
        item = self.client.get_item(TableName=self.users, Key={"user_uuid": {"S": user_uuid}},
                                    ConsistentRead=True, ProjectionExpression="password_hash").get("Item")
        return item["password_hash"]["S"] if item and "password_hash" in item else None

    def verify(self, *, digest: str, user_uuid: str, current_email: str, new_email: str, now: int) -> None:
        """One transaction: use up the token, move the e-mail claim if the address changes, and
        set the users item's email and email_verified (only if its address is still `current_email`)."""
        items = [self._use_token(digest, now)]
        if email_claim(new_email) != email_claim(current_email):
            items += [self._release_claim(current_email, user_uuid), self._take_claim(new_email, user_uuid)]
        items.append(self._set_verified(user_uuid, current_email, new_email))
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if not codes:
                raise
            if codes[0] == "ConditionalCheckFailed":
                raise TokenRefused() from None
            if len(items) == 4 and codes[2] == "ConditionalCheckFailed":
                raise ClaimTaken() from None
            # The address changed meanwhile, or a parallel transaction touched an item (TransactionConflict).
            raise AddressChanged() from None

    def _use_token(self, digest: str, now: int) -> dict[str, Any]:
        return {"Delete": {"TableName": self.tokens, "Key": {"token_digest": {"S": digest}},
                           "ConditionExpression": "attribute_exists(token_digest) AND #k = :k AND #e > :now",
                           "ExpressionAttributeNames": {"#k": "kind", "#e": "expires_epoch"},
                           "ExpressionAttributeValues": {":k": {"S": VERIFY_KIND}, ":now": {"N": str(now)}}}}

    def _release_claim(self, email: str, user_uuid: str) -> dict[str, Any]:
        return {"Delete": {"TableName": self.claims, "Key": {"claim": {"S": email_claim(email)}},
                           "ConditionExpression": "#u = :u", "ExpressionAttributeNames": {"#u": "user_uuid"},
                           "ExpressionAttributeValues": {":u": {"S": user_uuid}}}}

    def _take_claim(self, email: str, user_uuid: str) -> dict[str, Any]:
        return {"Put": {"TableName": self.claims,
                        "Item": {"claim": {"S": email_claim(email)}, "user_uuid": {"S": user_uuid}},
                        "ConditionExpression": "attribute_not_exists(claim)"}}

    def _set_verified(self, user_uuid: str, current_email: str, new_email: str) -> dict[str, Any]:
        return {"Update": {"TableName": self.users, "Key": {"user_uuid": {"S": user_uuid}},
                           "UpdateExpression": "SET #m = :new, #v = :true",
                           "ConditionExpression": "#m = :current AND attribute_not_exists(deleting_since)",
                           "ExpressionAttributeNames": {"#m": "email", "#v": "email_verified"},
                           "ExpressionAttributeValues": {":new": {"S": new_email}, ":current": {"S": current_email},
                                                         ":true": {"BOOL": True}}}}
