"""Password-reset links and each account's reset mails of the hour (SPEC §4), items of the
one_time_tokens table.

A link is keyed by its token's digest and holds the account's reset generation: a reset or a
password change moves the generation on and voids it. The mail window item of an account counts
the reset mails sent in one budget window and names the newest link mailed (its digest; no
address, no token), so that a request refused a mail can keep that link working. It names the
account, so the account's deletion finds it (ITEMS_BY_USER); its TTL is the window's end."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from accounts.user_store import RESET_GENERATION, generation_condition
from common.database import dynamo

RESET_KIND = "password_reset"
MAILS_KIND = "password_reset_mails"


@dataclass(frozen=True)
class MailWindow:
    """An account's reset mails in one window: how many the budget counted, and the newest link."""
    mails: int = 0
    newest: str | None = None  # the digest of the newest link mailed in the window


def _window_id(user_uuid: str, window: int) -> str:
    return f"reset-mails#{user_uuid}#{window}"  # not a hex digest: no token's digest can take it


class ResetLinkStore:
    def __init__(self, client: Any, *, tokens_table: str, users_table: str) -> None:
        self.client, self.tokens, self.users = client, tokens_table, users_table

    def mail_window(self, user_uuid: str, *, window: int) -> MailWindow:
        key = {"token_digest": {"S": _window_id(user_uuid, window)}}
        item = dynamo.from_item(self.client.get_item(TableName=self.tokens, Key=key, ConsistentRead=True).get("Item"))
        if not item or item.get("kind") != MAILS_KIND:
            return MailWindow()
        return MailWindow(mails=int(item["mails"]), newest=item.get("newest"))

    def add_link(self, *, digest: str, user_uuid: str, reset_generation: int, expires_epoch: int, window: int,
                 window_end: int, seen_mails: int, mails: int, mail_write: dict[str, Any] | None = None) -> bool:
        """One transaction: store the link and make it the window's newest, with `mails` counted, if
        the window still holds the count read (`seen_mails`), and `mail_write` (the link's mail into the
        outbox); False if another mail was counted first."""
        link = {"token_digest": digest, "kind": RESET_KIND, "expires_epoch": expires_epoch,
                dynamo.TTL_ATTRIBUTE: expires_epoch, "user_uuid": user_uuid, "reset_generation": reset_generation}
        window_item = {"token_digest": _window_id(user_uuid, window), "kind": MAILS_KIND,
                       "expires_epoch": window_end, dynamo.TTL_ATTRIBUTE: window_end, "user_uuid": user_uuid,
                       "mails": mails, "newest": digest}
        # An operator's link leaves the count as it is: only a counted mail changes what others read.
        try:
            self.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.tokens, "Item": dynamo.to_item(link),
                         "ConditionExpression": "attribute_not_exists(token_digest)"}},
                {"Put": {"TableName": self.tokens, "Item": dynamo.to_item(window_item),
                         "ConditionExpression": "attribute_not_exists(token_digest) OR mails = :seen",
                         "ExpressionAttributeValues": {":seen": {"N": str(seen_mails)}}}},
                *([mail_write] if mail_write else [])])
        except ClientError as exc:
            if dynamo.cancellation_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def renew(self, *, digest: str, user_uuid: str, reset_generation: int, expires_epoch: int, now: int) -> bool:
        """Make the link live until `expires_epoch`, in one transaction with a check that the account
        is still in `reset_generation`; False if the link is gone (used, or expired and removed),
        expired, of another account, or void (a reset or password change since, or no account)."""
        condition, values = generation_condition(RESET_GENERATION, reset_generation)
        try:
            self.client.transact_write_items(TransactItems=[
                {"Update": {"TableName": self.tokens, "Key": {"token_digest": {"S": digest}},
                            "UpdateExpression": "SET expires_epoch = :e, #ttl = :e",
                            "ConditionExpression": "attribute_exists(token_digest) AND #k = :k AND user_uuid = :u "
                                                   "AND reset_generation = :g AND expires_epoch > :now",
                            "ExpressionAttributeNames": {"#k": "kind", "#ttl": dynamo.TTL_ATTRIBUTE},
                            "ExpressionAttributeValues": {
                                ":e": {"N": str(expires_epoch)}, ":k": {"S": RESET_KIND}, ":u": {"S": user_uuid},
                                ":g": {"N": str(reset_generation)}, ":now": {"N": str(now)}}}},
                {"ConditionCheck": {"TableName": self.users, "Key": {"user_uuid": {"S": user_uuid}},
                                    "ConditionExpression": f"attribute_exists(user_uuid) AND {condition}",
                                    "ExpressionAttributeValues": values}}])
        except ClientError as exc:
            if "ConditionalCheckFailed" in dynamo.cancellation_codes(exc):
                return False
            raise
        return True
