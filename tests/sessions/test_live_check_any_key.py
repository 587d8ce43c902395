"""An app's grant checks only that the device's session lives, not which key the device's own tokens are
bound to: a certificate renewal that moves the session to the device's new key between an app's read of
the session and its write (the soak met it as an app's refresh refused while its grant lived) refuses
nothing; a session that ended still refuses."""
from __future__ import annotations

import pytest

from common.database.guarded_write import write_all
from sessions import service as sessions
from sessions.service import session_store
from tests.support.live import PASSWORD, register_device


def test_a_session_moved_to_the_devices_new_key_is_still_live_for_an_app_and_an_ended_one_is_not(make_server):
    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    store = session_store(ctx)
    read = store.get(client.session_id)                       # what the app's request read
    assert read.jkt, "the device's session is bound to its key"
    ctx.dynamodb.transact_write_items(TransactItems=[store.rebind_item(read, jkt="N" * 43)])   # the renewal
    write_all(ctx.dynamodb, [sessions.session_live_check(ctx, read)])                      # still live: no refusal
    sessions.revoke_session(ctx, session=store.get(read.session_id), reason="logged_out")
    with pytest.raises(Exception) as refused:
        write_all(ctx.dynamodb, [sessions.session_live_check(ctx, read)])
    assert getattr(refused.value, "status", None) == 401, refused.value
