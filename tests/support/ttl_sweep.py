"""What DynamoDB's TTL does some time after an item's TTL has passed: delete it (late, never early)."""
from __future__ import annotations

from common.database import dynamo
from common.runtime.context import AppContext


def sweep_expired_items(ctx: AppContext, table: str, *, key: tuple[str, ...], now: int) -> int:
    """Delete the items of `table` (key attributes `key`) whose TTL is at or before `now`; how many."""
    swept = 0
    for page in ctx.dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if dynamo.TTL_ATTRIBUTE in item and int(item[dynamo.TTL_ATTRIBUTE]["N"]) <= now:
                ctx.dynamodb.delete_item(TableName=table, Key={name: item[name] for name in key})
                swept += 1
    return swept


def sweep_pairing_tokens(ctx: AppContext, *, now: int) -> int:
    return sweep_expired_items(ctx, ctx.tables.pairing_tokens, key=("token_digest",), now=now)
