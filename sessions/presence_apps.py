"""The apps a seat lists (SPEC §5): the 409 concurrent_login names each device that could go with the apps
signed in on its session, from the presence record the login reads anyway, so that the question costs no
read. An app's first sign-in on a session adds it to that session's entry after the fact: the entry is
what a person is shown, never what decides, so a login that rewrites the record meanwhile may drop it."""
from __future__ import annotations

from botocore.exceptions import ClientError

from common.database import dynamo
from common.runtime.context import AppContext
from sessions.context import session_store


def note_app_on_seat(ctx: AppContext, *, user_uuid: str, device_id: str, session_id: str,
                     app: tuple[str, str]) -> None:
    """Add `app` ((client_id, name)) to the presence entry of `session_id`, while the entry is that
    session's (one that ended or was replaced meanwhile is left as it is)."""
    store = session_store(ctx)
    try:
        store.client.update_item(
            TableName=store.presence, Key=store.presence_key(user_uuid),
            UpdateExpression="ADD entries.#d.app_names :app", ConditionExpression="entries.#d.session_id = :sid",
            ExpressionAttributeNames={"#d": device_id},
            ExpressionAttributeValues={":app": {"SS": [" ".join(app)]}, ":sid": {"S": session_id}})
    except ClientError as exc:
        if not dynamo.is_condition_failure(exc):
            raise
