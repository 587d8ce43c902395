"""The console's undelivered mail (issue 65 item 2), in Chromium: an admin sees the mail the outbox gave up
on (its event, account, tries and last error, never its address or link), re-sends one with a reason (the
service's sender then sends it) and drops another; a support operator has no Mail tab."""
from __future__ import annotations

from playwright.sync_api import expect

from accounts.models import Role
from common.mail.sender import MailSender
from tests.browser.test_admin_console import open_console, operator
from tests.operators.test_admin_mail import TOKEN, Recorder, undelivered_mail


def confirm(page, row, button: str, reason: str) -> None:
    row.get_by_role("button", name=button).click()
    dialog = page.locator("#action-dialog")
    expect(dialog.locator("#action-reason")).to_be_focused()
    dialog.locator("#action-reason").fill(reason)
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()


def test_an_admin_resends_and_drops_undelivered_mail_in_the_console(make_server, new_device):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    kept, dropped = (undelivered_mail(ctx, "u-console-mail", "console-person@example.org") for _ in range(2))
    support = open_console(operator(new_device, url, ctx, Role.SUPPORT))
    expect(support.locator("#console .tabs button[data-tab=mail]")).to_be_hidden()

    admin = open_console(operator(new_device, url, ctx, Role.ADMIN))
    admin.locator("#console .tabs button[data-tab=mail]").click()
    panel = admin.locator("#mail-panel")
    row = panel.locator("#mail-rows tr", has_text=kept)
    expect(row).to_contain_text("password_reset")
    expect(row).to_contain_text("SMTPRecipientsRefused 550")
    listed = panel.inner_text()
    assert "console-person@example.org" not in listed and TOKEN not in listed

    confirm(admin, row, "Re-send", "ticket 40: the address is fixed")
    expect(panel.locator("#mail-done")).to_have_text(f"Done: Re-send ({kept}).")
    expect(row).to_have_count(0)
    assert MailSender(ctx.notifier, interval=1).turn() >= 1
    assert [m.event for m in recorder.messages if m.email == "console-person@example.org"] == ["password_reset"]

    confirm(admin, panel.locator("#mail-rows tr", has_text=dropped), "Drop", "ticket 41: a new link was sent")
    expect(panel.locator("#mail-done")).to_have_text(f"Done: Drop ({dropped}).")
    expect(panel.locator("#mail-rows tr", has_text=dropped)).to_have_count(0)
