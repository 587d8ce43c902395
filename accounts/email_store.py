"""The account's e-mail address: verification tokens and the move of its uniqueness claim
(SPEC §4, §8). Tokens are items of the one_time_tokens table keyed by their digest.

Each link holds the account's link generation it was made in; making a link or using one moves
the generation on, so only the newest link works and no other has to be found and deleted."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from accounts.user_store import EMAIL_UNCLAIMED, email_claim, generation_condition
from common.database import dynamo

VERIFY_KIND = "verify_email"
LINK_GENERATION = "email_link_generation"  # on the users item; absent until a second link is made


class ClaimTaken(dynamo.StoreRefusal):
    """Another account holds the new address's claim."""


class TokenRefused(dynamo.StoreRefusal):
    """The token is unknown, used or expired."""


class AddressChanged(dynamo.StoreRefusal):
    """The account's address (or the transaction's items) changed since it was read; read again."""


class EmailStore:
    def __init__(self, client: Any, *, users_table: str, claims_table: str, tokens_table: str) -> None:
        self.client, self.users, self.claims, self.tokens = client, users_table, claims_table, tokens_table

    def next_generation(self, user_uuid: str) -> int | None:
        """Move the account's link generation on (every link made before is void from now) and
        return it for the new link; None if there is no such account."""
        try:
            response = self.client.update_item(
                TableName=self.users, Key={"user_uuid": {"S": user_uuid}}, ReturnValues="UPDATED_NEW",
                UpdateExpression=f"SET {LINK_GENERATION} = if_not_exists({LINK_GENERATION}, :zero) + :one",
                ConditionExpression="attribute_exists(user_uuid)",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        return int(response["Attributes"][LINK_GENERATION]["N"])

    def token_put(self, *, digest: str, user_uuid: str, email: str, expires_epoch: int,
                  generation: int) -> dict[str, Any]:
        """A TransactWriteItems entry that stores a verification token of `email` (with its TTL),
        valid while the account's link generation is `generation`."""
        item = {"token_digest": digest, "kind": VERIFY_KIND, "expires_epoch": expires_epoch,
                dynamo.TTL_ATTRIBUTE: expires_epoch, "user_uuid": user_uuid, "email": email,
                "generation": generation}
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

    def verify(self, *, digest: str, user_uuid: str, current_email: str, new_email: str, generation: int,
               now: int, holds_current: bool = True) -> None:
        """One transaction: use up the token, move the e-mail claim if the address changes, and
        set the users item's email and email_verified, only if its address is still `current_email`
        and its link generation still the token's `generation`; the generation moves on.
        `holds_current=False`: the account holds no claim (its address was given at registration
        while another account held it): the new address's claim is taken, even if it is the same
        address, and the item is no longer marked unclaimed."""
        items = [self._use_token(digest, now)]
        if not holds_current:
            items.append(self._take_claim(new_email, user_uuid))
        elif email_claim(new_email) != email_claim(current_email):
            items += [self._release_claim(current_email, user_uuid), self._take_claim(new_email, user_uuid)]
        taking = len(items) - 1 if len(items) > 1 else None  # the index of the claim's Put, if any
        items.append(self._set_verified(user_uuid, current_email, new_email, generation, holds_current))
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if not codes or dynamo.outage_cause(exc) == "throttling":
                raise  # throttled: a 503, not a changed address to read again
            if codes[0] == "ConditionalCheckFailed":
                raise TokenRefused() from None
            if taking is not None and codes[taking] == "ConditionalCheckFailed":
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

    def _set_verified(self, user_uuid: str, current_email: str, new_email: str, generation: int,
                      holds_current: bool) -> dict[str, Any]:
        same_generation, values = generation_condition(LINK_GENERATION, generation)
        # Whether the account holds its address is part of what was read: a change of it is a change of address.
        claim_state = "attribute_not_exists(#u)" if holds_current else "attribute_exists(#u)"
        return {"Update": {"TableName": self.users, "Key": {"user_uuid": {"S": user_uuid}},
                           "UpdateExpression": f"SET #m = :new, #v = :true, {LINK_GENERATION} = :next REMOVE #u",
                           "ConditionExpression": f"#m = :current AND {same_generation} AND {claim_state} "
                                                  "AND attribute_not_exists(deleting_since)",
                           "ExpressionAttributeNames": {"#m": "email", "#v": "email_verified", "#u": EMAIL_UNCLAIMED},
                           "ExpressionAttributeValues": {**values, ":new": {"S": new_email},
                                                         ":current": {"S": current_email}, ":true": {"BOOL": True},
                                                         ":next": {"N": str(generation + 1)}}}}
