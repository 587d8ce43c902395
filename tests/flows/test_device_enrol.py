"""The first device of an account that has none, an imported one (SPEC §17): POST /device/enrol/code mails a
6-digit code (10 minutes, 5 tries, single use, a digest in the table) without telling whether the account
exists; POST /device/enrol takes the password (under the lockout), refuses an account that has a device
(409 device_exists), then the code (401 invalid_email_code, counted), and stores one first device, whatever
races it. Over HTTP on DynamoDB Local; the account is put straight into the tables as an import leaves it."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import bcrypt
import pytest
import requests

from accounts import enrol_codes
from accounts.models import UserRecord
from accounts.user_store import UserStore
from citylogin.client.api import Client, CityloginError
from common.crypto.imported_hashes import canonical_hash
from common.crypto.passwords import IMPORTED_PREFIX
from common.timefmt import iso
from devices import first_device
from devices import service as devices
from tests.conftest import unique_name
from tests.support.federation_flows import at_once
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, register_device, settle_background

CODE = re.compile(r"\b(\d{6})\b")


class Recorder:
    def __init__(self) -> None:
        self.messages: list = []

    def send(self, message) -> None:
        self.messages.append(message)


@dataclass
class Imported:
    """An account as `citylogin accounts import` leaves it: no device, an address not yet verified."""

    user_uuid: str
    username: str
    email: str


def imported_account(ctx, *, locale: str = "en", password_hash: str | None = None, email: str | None = None
                     ) -> Imported:
    username = unique_name("imp")
    email = f"{username}@example.com" if email is None else email
    user = UserRecord(user_uuid=str(uuid.uuid4()), username=username, email=email,
                      password_hash=password_hash or ctx.passwords.hash(PASSWORD), created_at=iso(ctx.now()),
                      locale=locale, imported_from="csv", imported_at=iso(ctx.now()))
    UserStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims).create(user, extra_writes=[])
    return Imported(user_uuid=user.user_uuid, username=username, email=email)


class Server:
    """The all-in-one app, its inbox, and each request from its own client address."""

    def __init__(self, make_server, **settings) -> None:
        self.url, self.ctx = make_server(trusted_proxies=1, **settings)
        self.ctx.notifier.backend = self.inbox = Recorder()
        self._net, self._host = uuid.uuid4().int % 65536, 0

    def ip(self) -> str:
        self._host += 1
        return f"10.{self._net >> 8}.{self._net & 255}.{self._host % 250 + 1}"

    def ask_code(self, username: str, *, ip: str | None = None) -> requests.Response:
        return requests.post(self.url + "/device/enrol/code", json={"username": username},
                             headers={"X-Forwarded-For": ip or self.ip()}, timeout=30)

    def mails(self, event: str, email: str | None = None) -> list:
        settle_background(self.ctx)
        return [m for m in self.inbox.messages if m.event == event and (email is None or m.email == email)]

    def codes(self, account: Imported) -> list[str]:
        return [CODE.search(m.body).group(1) for m in self.mails("enrol_code", account.email)]

    def code(self, account: Imported) -> str:
        assert self.ask_code(account.username).status_code == 202
        return self.codes(account)[-1]

    def enrol(self, account: Imported, code: str, *, password: str = PASSWORD, **extra) -> requests.Response:
        body = {"username": account.username, "password": password, "email_code": code, **extra}
        return requests.post(self.url + "/device/enrol", json=body, headers={"X-Forwarded-For": self.ip()},
                             timeout=60)

    def users_item(self, account: Imported) -> dict:
        return self.ctx.dynamodb.get_item(TableName=self.ctx.tables.users, ConsistentRead=True,
                                          Key={"user_uuid": {"S": account.user_uuid}})["Item"]

    def active_devices(self, account: Imported) -> list[str]:
        return [d.device_id for d in devices.device_store(self.ctx).list_for_user(account.user_uuid)
                if d.status == "active"]


@pytest.fixture
def server(make_server) -> Server:
    return Server(make_server, login_max_failures=50)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_mailed_code_and_the_password_give_a_first_device_that_logs_in(server):
    account = imported_account(server.ctx)
    code = server.code(account)
    client = Client(server.url)
    key_file = client.enrol(code, username=account.username, password=PASSWORD, device_name="laptop")
    assert key_file.user_uuid == account.user_uuid and key_file.device_name == "laptop"
    assert client.login(PASSWORD)["device_id"] == key_file.device_id
    item = server.users_item(account)
    assert item["email_verified"] == {"BOOL": True}  # the code proved the address
    assert server.active_devices(account) == [key_file.device_id]
    assert [m.email for m in server.mails("device_enrolled")] == [account.email]
    # The code is used up, and an account with a device gets no code nor a second first device.
    assert problem(server.enrol(account, code))[:2] == (409, "device_exists")
    assert server.ask_code(account.username).status_code == 202
    assert server.codes(account) == [code]


def test_the_code_is_stored_only_as_a_digest(server):
    account = imported_account(server.ctx)
    code = server.code(account)
    stored = repr(server.ctx.dynamodb.scan(TableName=server.ctx.tables.one_time_tokens)["Items"])
    assert f"enrol-code#{account.user_uuid}" in stored and code not in stored
    assert account.email not in stored


def test_known_and_unknown_usernames_get_the_same_answer_and_only_a_known_one_a_mail(server):
    account = imported_account(server.ctx)
    known = server.ask_code(account.username)
    unknown = server.ask_code(unique_name("nobody"))
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (202, known.json())
    assert len(server.mails("enrol_code")) == 1
    no_address = imported_account(server.ctx, email="")
    answer = server.ask_code(no_address.username)
    assert (answer.status_code, answer.json()) == (202, known.json())
    assert len(server.mails("enrol_code")) == 1


def test_an_address_in_the_usernames_place_mails_the_code_and_the_username_to_its_account(server):
    # A source whose usernames were addresses: the person types theirs, the mail says their username.
    account = imported_account(server.ctx)
    other = server.ask_code(unique_name("nobody") + "@example.com")
    answer = server.ask_code(account.email.upper())
    assert (answer.status_code, answer.json()) == (other.status_code, other.json()) == (202, other.json())
    [mail] = server.mails("enrol_code")
    assert mail.email == account.email and account.username in mail.body
    code = CODE.search(mail.body).group(1)
    assert server.enrol(account, code).status_code == 201


def test_every_refusal_of_the_enrol(server):
    account = imported_account(server.ctx)
    assert problem(server.enrol(account, "123456"))[:2] == (401, "invalid_email_code")  # no code asked
    code = server.code(account)
    assert problem(server.enrol(account, code, password="wrong password"))[:2] == (401, "invalid_credentials")
    assert problem(server.enrol(account, wrong(code)))[:2] == (401, "invalid_email_code")
    assert problem(server.enrol(account, "not a code"))[:2] == (401, "invalid_email_code")
    ghost = Imported(user_uuid="", username=unique_name("nobody"), email="")
    assert problem(server.enrol(ghost, code))[:2] == (401, "invalid_credentials")
    bad = requests.post(server.url + "/device/enrol", json={"username": account.username}, timeout=30)
    assert problem(bad)[0] == 400
    server.ctx.dynamodb.update_item(TableName=server.ctx.tables.users, Key={"user_uuid": {"S": account.user_uuid}},
                                    UpdateExpression="SET locked = :t",
                                    ExpressionAttributeValues={":t": {"BOOL": True}})
    assert problem(server.enrol(account, code))[:2] == (403, "account_locked")
    assert server.active_devices(account) == []


def test_an_account_that_has_a_device_is_told_device_exists_before_the_code(server):
    registered = register_device(server.url).require_key_file()
    account = Imported(user_uuid=registered.user_uuid, username=registered.username,
                       email=f"{registered.username}@example.com")
    assert server.ask_code(account.username).status_code == 202
    assert server.codes(account) == []  # no code for an account with a device
    assert problem(server.enrol(account, "000000"))[:2] == (409, "device_exists")


def test_five_wrong_codes_void_the_code(server):
    account = imported_account(server.ctx)
    code = server.code(account)
    for _ in range(enrol_codes.MAX_TRIES):
        assert problem(server.enrol(account, wrong(code)))[:2] == (401, "invalid_email_code")
    assert problem(server.enrol(account, code))[:2] == (401, "invalid_email_code")
    fresh = server.code(account)  # a new code works again
    assert server.enrol(account, fresh).status_code == 201


def test_wrong_codes_count_toward_the_lockout(make_server):
    server = Server(make_server)  # the default lockout: 5 failures
    account = imported_account(server.ctx)
    code = server.code(account)
    answers = [problem(server.enrol(account, wrong(code)))[:2] for _ in range(6)]
    assert answers[:5] == [(401, "invalid_email_code")] * 5 and answers[5][:2] == (429, "too_many_attempts")
    assert problem(server.enrol(account, code))[:2] == (429, "too_many_attempts")


def test_a_code_lives_ten_minutes_and_a_new_one_voids_the_last(server):
    account = imported_account(server.ctx)
    server.ctx.clock = clock = FakeClock()
    first = server.code(account)
    second = server.code(account)
    assert problem(server.enrol(account, first))[:2] == (401, "invalid_email_code")  # the newest code is the one
    clock.moment += timedelta(seconds=enrol_codes.CODE_TTL + 1)
    assert problem(server.enrol(account, second))[:2] == (401, "invalid_email_code")
    assert server.enrol(account, server.code(account)).status_code == 201


def test_a_code_mailed_in_japanese_for_a_japanese_account(server):
    account = imported_account(server.ctx, locale="ja")
    code = server.code(account)
    [mail] = server.mails("enrol_code", account.email)
    assert "最初のデバイス" in mail.subject and code in mail.body and account.username in mail.body
    assert server.enrol(account, code).status_code == 201
    [told] = server.mails("device_enrolled", account.email)
    assert "最初のデバイス" in told.subject


def test_the_budget_caps_the_mails_never_the_answer_and_the_ip_gets_429(server):
    account = imported_account(server.ctx)
    server.ctx.clock = clock = FakeClock()
    clock.moment = datetime.fromtimestamp((int(clock.moment.timestamp()) // 3600 + 1) * 3600 + 5, timezone.utc)
    answers = [server.ask_code(account.username) for _ in range(enrol_codes.CODES_PER_ACCOUNT + 3)]
    assert {(a.status_code, a.json()["message"]) for a in answers} == {(202, answers[0].json()["message"])}
    assert len(server.codes(account)) == enrol_codes.CODES_PER_ACCOUNT
    assert server.enrol(account, server.codes(account)[-1]).status_code == 201  # the newest code mailed works
    ip = server.ip()
    for _ in range(enrol_codes.CODE_REQUESTS_PER_IP):
        assert server.ask_code(unique_name("nobody"), ip=ip).status_code == 202
    refused = server.ask_code(unique_name("nobody"), ip=ip)
    assert problem(refused)[:2] == (429, "too_many_attempts") and int(refused.headers["Retry-After"]) > 0


def test_two_enrols_with_one_code_at_once_store_one_device(server):
    account = imported_account(server.ctx)
    code = server.code(account)
    answers = at_once([lambda: server.enrol(account, code) for _ in range(4)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, [a.text for a in answers]
    assert all(problem(a)[1] in ("device_exists", "invalid_email_code") for a in answers if a.status_code != 201)
    assert len(server.active_devices(account)) == 1


def test_enrols_with_two_codes_racing_never_store_two_first_devices(server):
    """A code asked again while an enrol holds the last one: whichever commits, one first device."""
    account = imported_account(server.ctx)
    first = server.code(account)
    answers = at_once([lambda: server.enrol(account, first), lambda: server.ask_code(account.username)])
    second = server.codes(account)[-1]
    later = server.enrol(account, second)
    made = [a for a in (answers[0], later) if a.status_code == 201]
    assert len(made) == 1 and len(server.active_devices(account)) == 1


def test_store_first_device_stores_one_of_many_at_once(server):
    account = imported_account(server.ctx)

    def store() -> str:
        issued = devices.issue_device(server.ctx, user_uuid=account.user_uuid, device_name=None, is_primary=True,
                                      public_key=None, csr=None)
        try:
            first_device.store_first_device(server.ctx, issued)
            return "stored"
        except first_device.DeviceExists:
            return "device_exists"
    assert sorted(at_once([store] * 4)) == ["device_exists"] * 3 + ["stored"]
    assert len(server.active_devices(account)) == 1


def test_the_client_raises_the_refusal(server):
    account = imported_account(server.ctx)
    assert "code" in Client(server.url).enrol_code(account.username)["message"]
    with pytest.raises(CityloginError) as refused:
        Client(server.url).enrol("000000", username=account.username, password=PASSWORD)
    assert refused.value.code == "invalid_email_code"


def test_an_imported_bcrypt_hash_is_replaced_by_argon2id_in_the_enrols_transaction(server):
    made = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    account = imported_account(server.ctx, password_hash=IMPORTED_PREFIX + canonical_hash(made))
    code = server.code(account)
    assert problem(server.enrol(account, code, password="not the password"))[:2] == (401, "invalid_credentials")
    assert server.users_item(account)["password_hash"]["S"].startswith(IMPORTED_PREFIX + "$2b$")
    client = Client(server.url)
    client.enrol(code, username=account.username, password=PASSWORD)
    stored = server.users_item(account)["password_hash"]["S"]
    assert stored.startswith("$argon2id$") and server.ctx.passwords.verify(stored, PASSWORD)
    assert client.login(PASSWORD)["user_uuid"] == account.user_uuid
