"""Who runs an operator command (`citylogin admin`, `citylogin keys`), for its audit lines:
`--operator`, else the AWS caller identity against Amazon DynamoDB, else the OS user."""
from __future__ import annotations

import getpass
import os

import click

from common.config import Settings

OPERATOR_HELP = ("Who acts, named in every audit line of this command (default: the AWS caller identity "
                 "against Amazon DynamoDB, else the OS user).")


def remember_operator(ctx: click.Context, given: str | None) -> None:
    """Keep the group's --operator for its commands."""
    ctx.ensure_object(dict)["operator"] = given


def operator_name(settings: Settings) -> str:
    context = click.get_current_context(silent=True)
    given = context.find_object(dict) if context else None
    if given and given.get("operator"):
        return given["operator"]
    if not settings.uses_dynamodb_local:
        identity = _aws_caller(settings)
        if identity:
            return identity
    return _os_user()


def _aws_caller(settings: Settings) -> str | None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sts = boto3.client("sts", region_name=settings.aws_region,
                           config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}))
        return sts.get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError):
        return None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a container)
        return f"uid {os.getuid()}"
