"""The OpenID Provider on an app context: its issuer and its stores."""
from __future__ import annotations

from common.database.one_time_tokens import OneTimeTokenStore
from oidc.core.store import GrantStore
from common.runtime.context import AppContext


def issuer(ctx: AppContext) -> str:
    return ctx.public_url().rstrip("/")


def one_time_tokens(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def grant_store(ctx: AppContext) -> GrantStore:
    return GrantStore(ctx.dynamodb, ctx.tables.oidc_grants)
