"""The code mailed for the first device of an account that has none (SPEC §17): 6 digits, 10 minutes, 5
tries, single use, stored as a digest and compared in constant time. The newest code mailed is the
account's only one. Requests are capped per client address (429) and mails per account and per address
(a budget: past it nothing is mailed and the answer is the same, as for reset links). No Flask here."""
from __future__ import annotations

import secrets
import unicodedata

from accounts.enrol_code_store import EnrolCodeStore
from accounts.models import UserRecord
from common.crypto.tokens import digests_equal, token_digest
from common.database.guarded_write import GuardedWrite
from common.errors import ErrorCode, TooManyRequests, Unauthorized
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore, limit_subject

CODE_DIGITS = 6
CODE_TTL = 600  # seconds
MAX_TRIES = 5
CODE_WINDOW = 3600
CODES_PER_ACCOUNT = 5  # mails per CODE_WINDOW (a budget, never a refusal)
CODES_PER_ADDRESS = 5
CODE_REQUESTS_PER_IP = 20  # requests per CODE_WINDOW (429 past it)
PURPOSE = "enrol-code"


class InvalidEmailCode(Unauthorized):
    code = ErrorCode.INVALID_EMAIL_CODE
    detail = "This code is wrong, has expired or was already used; ask for a new one."


class CodeBudgetSpent(Exception):
    """The account's or the address's mails of this window are spent: nothing is mailed."""


def code_store(ctx: AppContext) -> EnrolCodeStore:
    return EnrolCodeStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def _code_digest(user_uuid: str, code: str) -> str:
    # The account in the digest: one account's digest tells nothing of another's code.
    return token_digest(f"{user_uuid}/{code}", purpose=PURPOSE)


def _typed(code: str) -> str:
    """A typed code as digested: full-width digits folded, spaces and hyphens dropped."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", code) if ch not in " -\t")


def address_digest(email: str) -> str:
    return token_digest(email.casefold(), purpose="enrol-address")  # no address in the tables


def take_request_allowance(ctx: AppContext, *, ip: str | None) -> None:
    """Count a code request in the client's own allowance: the only refusal (429) a request can get."""
    now = ctx.epoch()
    if RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
            f"enrol#ip:{limit_subject(ip)}", limit=CODE_REQUESTS_PER_IP, window_seconds=CODE_WINDOW, now=now) is None:
        raise TooManyRequests("Too many code requests; try again later.",
                              retry_after=CODE_WINDOW - now % CODE_WINDOW)


def new_code_writes(ctx: AppContext, *, user: UserRecord, code: str) -> list[GuardedWrite]:
    """The entries of a mailed code's transaction: one mail counted in the account's and in the address's
    budget (CodeBudgetSpent past either), the code stored in place of the account's last one."""
    limits, now = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits), ctx.epoch()
    per_account = limits.take_item(f"enrol#acct:{user.user_uuid}", limit=CODES_PER_ACCOUNT,
                                   window_seconds=CODE_WINDOW, now=now, user_uuid=user.user_uuid)
    per_address = limits.take_item(f"enrol#addr:{address_digest(user.email)}", limit=CODES_PER_ADDRESS,
                                   window_seconds=CODE_WINDOW, now=now)
    stored = code_store(ctx).put_item(user_uuid=user.user_uuid, code_digest=_code_digest(user.user_uuid, code),
                                      address_digest=address_digest(user.email), expires_epoch=now + CODE_TTL)
    return [GuardedWrite(item=dict(per_account), refusal=CodeBudgetSpent),
            GuardedWrite(item=dict(per_address), refusal=CodeBudgetSpent),
            GuardedWrite(item=stored, refusal=CodeBudgetSpent)]


def checked_code(ctx: AppContext, *, user: UserRecord, code: str) -> GuardedWrite:
    """The entry that uses up `code`, the account's live code mailed to its present address, for the
    transaction it lets happen (InvalidEmailCode if a parallel one used it first). A wrong code (or none
    live) is InvalidEmailCode, counted against the code's tries: past MAX_TRIES the code is void."""
    store, now = code_store(ctx), ctx.epoch()
    stored = store.get(user.user_uuid)
    presented = _code_digest(user.user_uuid, _typed(code))
    matched = digests_equal(presented, stored.code_digest if stored else _code_digest(user.user_uuid, "-"))
    if stored is None or stored.expires_epoch <= now or stored.tries >= MAX_TRIES:
        raise InvalidEmailCode()
    if not matched or not digests_equal(stored.address_digest, address_digest(user.email)):
        store.add_try(user_uuid=user.user_uuid, code_digest=stored.code_digest)
        raise InvalidEmailCode()
    return GuardedWrite(item=store.use_item(user_uuid=user.user_uuid, code_digest=stored.code_digest,
                                            max_tries=MAX_TRIES, now=now), refusal=InvalidEmailCode)
