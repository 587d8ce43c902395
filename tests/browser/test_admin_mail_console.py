"""The console's undelivered mail (issue 65 item 2), in Chromium: an admin sees the mail the outbox gave up
on (its event, account, tries and last error, never its address or link), re-sends one with a reason (the
service's sender then sends it) and drops another; the mail still tried is listed apart (issue 83); a
support operator has no Mail tab."""
from __future__ import annotations

from playwright.sync_api import expect

from accounts.models import Role
from common.mail.sender import MailSender
from tests.browser.test_admin_console import open_console, operator
from tests.operators.test_admin_mail import TOKEN, Recorder, set_times, undelivered_mail, waiting_mail


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
    waits = waiting_mail(ctx, "u-console-mail", "console-person@example.org", tries=1)
    set_times(ctx, waits, due_at=4_000_000_000)  # not due while this test runs, however slow the machine
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
    # Issue 83: the mail still tried is listed apart, with its tries, its next try and its last error.
    waiting = panel.locator("#mail-waiting-rows tr", has_text=waits)
    expect(waiting.locator("td[data-column='web.admin.col_mail_tries']")).to_have_text("1")
    expect(waiting.locator("td[data-column='web.admin.col_mail_next_try'] time")).to_have_count(1)
    expect(waiting).to_contain_text("SMTPServerDisconnected 421")
    expect(panel.locator("#mail-rows tr", has_text=waits)).to_have_count(0)
    expect(panel.locator("#mail-waiting-rows tr", has_text=kept)).to_have_count(0)

    confirm(admin, row, "Re-send", "ticket 40: the address is fixed")
    expect(panel.locator("#mail-done")).to_have_text(f"Done: Re-send ({kept}).")
    expect(row).to_have_count(0)
    assert MailSender(ctx.notifier, interval=1).turn() >= 1
    assert [m.event for m in recorder.messages if m.email == "console-person@example.org"] == ["password_reset"]

    confirm(admin, panel.locator("#mail-rows tr", has_text=dropped), "Drop", "ticket 41: a new link was sent")
    expect(panel.locator("#mail-done")).to_have_text(f"Done: Drop ({dropped}).")
    expect(panel.locator("#mail-rows tr", has_text=dropped)).to_have_count(0)
