"""Which running `citylogin serve` an operator command acts on (citylogin.server.service_choice, issue 65): the one its
settings or folder point to, or the one named with --service; anything else refused with one line listing those
that run. The services here are records only (no process is started); the processes and commands are
tests/citylogin/server/test_commands_find_serve.py's."""
from __future__ import annotations

import string
from pathlib import Path

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from citylogin.server.running_services import RunningService, deployment_fingerprint
from citylogin.server.service_choice import (ServiceName, ServiceRefused, address_of, chosen_service, records_apply,
                                             service_name)
from common.config import load_settings

NOTHING = "nothing was read, written or started"


def service(folder: Path, *, pid: int, port: int, prefix: str = "citylogin_", key_encryption: str = "data_dir",
            issuer: str = "citylogin") -> RunningService:
    defining = {"url": f"http://localhost:{port}", "dynamodb_endpoint_url": f"http://127.0.0.1:{port + 1}",
                "data_dir": str(folder.resolve()), "table_prefix": prefix, "jwt_issuer": issuer,
                "key_encryption": key_encryption}
    return RunningService(pid=pid, started="1", **defining, fingerprint=deployment_fingerprint(**defining))


def settings_in(folder: Path, **given):
    """A command's settings as its shell gives them: the data directory `folder/.data` unless set."""
    explicit = {k: v for k, v in given.items() if v is not None}
    settings = load_settings(explicit, environ={})
    if "data_dir" not in explicit:
        settings = settings.model_copy(update={"data_dir": folder / ".data"})
        settings.model_fields_set.discard("data_dir")  # the default `.data`, of the folder the command runs in
    return settings


@pytest.fixture
def two(tmp_path):
    staging, production = tmp_path / "staging" / ".data", tmp_path / "production" / ".data"
    return [service(staging, pid=101, port=5001), service(production, pid=202, port=5002)]


def test_a_command_in_a_folder_of_no_service_refuses_listing_both_and_how_to_choose(tmp_path, two):
    with pytest.raises(ServiceRefused) as refused:
        chosen_service(settings_in(tmp_path / "neutral"), two, None)
    line = refused.value.message
    assert "\n" not in line and line.endswith(NOTHING)
    for running in two:
        assert f"{running.url} (pid {running.pid}, data in {running.data_dir}, deployment " \
               f"{running.fingerprint[:12]})" in line
    assert "--service URL or --service PID" in line and "run the command in its folder" in line
    assert "set CITYLOGIN_DATA_DIR to its data directory" in line
    with pytest.raises(ServiceRefused) as one:  # one running elsewhere is no more the command's than two
        chosen_service(settings_in(tmp_path / "neutral"), two[:1], None)
    assert "one runs elsewhere" in one.value.message


def test_each_folder_and_each_data_directory_named_gets_its_own_service(tmp_path, two):
    staging, production = two
    assert chosen_service(settings_in(tmp_path / "staging"), two, None) == staging
    assert chosen_service(settings_in(tmp_path / "production"), two, None) == production
    assert chosen_service(settings_in(tmp_path, data_dir=tmp_path / "production" / ".data"), two, None) == production


def test_a_folder_with_data_of_its_own_or_a_data_directory_named_is_left_to_its_own_data(tmp_path, two):
    own = tmp_path / "own"
    (own / ".data" / "dynamodb").mkdir(parents=True)
    (own / ".data" / "dynamodb" / "shared-local-instance.db").write_bytes(b"")
    assert chosen_service(settings_in(own), two, None) is None
    assert chosen_service(settings_in(tmp_path, data_dir=tmp_path / "new"), two, None) is None
    assert chosen_service(settings_in(tmp_path / "neutral"), [], None) is None


def test_init_in_a_folder_of_no_service_says_how_to_make_a_new_one_there(tmp_path, two):
    with pytest.raises(ServiceRefused) as refused:
        chosen_service(settings_in(tmp_path / "neutral"), two, None, may_create=True)
    assert f"(a new citylogin here: set CITYLOGIN_DATA_DIR={tmp_path / 'neutral' / '.data'})" in refused.value.message


def test_service_names_one_by_pid_or_address_wherever_the_command_runs(tmp_path, two):
    staging, production = two
    neutral = settings_in(tmp_path / "neutral")
    assert chosen_service(neutral, two, service_name("202")) == production
    assert chosen_service(neutral, two, service_name("HTTP://LocalHost:5001/")) == staging
    assert chosen_service(neutral, two, service_name("http://127.0.0.1:5001")) == staging  # as gunicorn says it
    assert chosen_service(settings_in(tmp_path / "staging"), two, service_name("202")) == production
    for nobody in ("303", "http://localhost:5003", "https://localhost:5001", "http://127.0.0.1:5003"):
        with pytest.raises(ServiceRefused) as refused:
            chosen_service(neutral, two, service_name(nobody))
        assert refused.value.message.startswith(f"no citylogin serve runs as {nobody} (--service); those that run: ")
        assert staging.url in refused.value.message and production.url in refused.value.message
    with pytest.raises(ServiceRefused) as none:
        chosen_service(neutral, [], service_name("202"))
    assert "none runs for this user" in none.value.message


@pytest.mark.parametrize("setting, value, named", [
    ("data_dir", "elsewhere", "CITYLOGIN_DATA_DIR"),
    ("table_prefix", "other_", "CITYLOGIN_TABLE_PREFIX"),
    ("dynamodb_endpoint_url", "http://127.0.0.1:9999", "CITYLOGIN_DYNAMODB_ENDPOINT_URL"),
    ("public_url", "https://id.example.com", "CITYLOGIN_PUBLIC_URL"),
    ("jwt_issuer", "staging", "CITYLOGIN_JWT_ISSUER")])
def test_a_setting_of_the_commands_own_that_names_another_deployment_is_refused_naming_it(tmp_path, two, setting,
                                                                                          value, named):
    production = two[1]
    value = str(tmp_path / value) if setting == "data_dir" else value
    with pytest.raises(ServiceRefused) as refused:
        chosen_service(settings_in(tmp_path / "production", **{setting: value}), two, service_name("202"))
    line = refused.value.message
    assert line.startswith(f"the citylogin running at {production.describe()} is another deployment than this "
                           f"shell's settings name: {named} is {value!r} here, ")
    assert line.endswith(NOTHING) and "\n" not in line


def test_settings_that_agree_with_the_service_are_no_refusal(tmp_path, two):
    production = two[1]
    agreeing = settings_in(tmp_path, data_dir=tmp_path / "production" / ".data", table_prefix="citylogin_",
                           public_url="http://LOCALHOST:5002/", jwt_issuer="citylogin",
                           dynamodb_endpoint_url="http://127.0.0.1:5003")
    assert chosen_service(agreeing, two, service_name("202")) == production


def test_a_key_set_here_that_the_service_does_not_seal_with_is_named_but_never_shown(tmp_path, two):
    secret = "A" * 43 + "="
    with pytest.raises(ServiceRefused) as refused:
        chosen_service(settings_in(tmp_path / "production", key_encryption_key=secret), two, None)
    assert ("CITYLOGIN_KEY_ENCRYPTION_KEY is set here, and it seals its key ring with the generated key of its "
            "data directory") in refused.value.message
    assert secret not in refused.value.message
    sealed = [service(tmp_path / "production" / ".data", pid=202, port=5002, key_encryption="setting")]
    with pytest.raises(ServiceRefused) as missing:
        chosen_service(settings_in(tmp_path / "production"), sealed, None)
    assert missing.value.message.endswith("seals its key ring under CITYLOGIN_KEY_ENCRYPTION_KEY: set it in this "
                                          "shell too")
    assert chosen_service(settings_in(tmp_path / "production", key_encryption_key=secret), sealed, None) == sealed[0]


def test_an_endpoint_set_uses_the_service_recorded_on_it_with_the_same_table_prefix(tmp_path, two):
    staging, production = two
    on_production = {"dynamodb_endpoint_url": "http://127.0.0.1:5003"}
    assert chosen_service(settings_in(tmp_path / "neutral", **on_production), two, None) == production
    assert chosen_service(settings_in(tmp_path / "neutral", **on_production, table_prefix="other_"), two, None) is None
    assert chosen_service(settings_in(tmp_path, dynamodb_endpoint_url="http://127.0.0.1:7"), two, None) is None
    with pytest.raises(ServiceRefused) as refused:
        chosen_service(settings_in(tmp_path / "n", **on_production, public_url="https://staging.example"), two, None)
    assert "CITYLOGIN_PUBLIC_URL is 'https://staging.example' here, 'http://localhost:5002' there" in \
        refused.value.message


def test_records_are_looked_for_only_where_serve_records_itself_or_a_service_is_named():
    assert records_apply(load_settings({}, environ={}), None)
    assert records_apply(load_settings({"dynamodb_endpoint_url": "http://localhost:8000"}, environ={}), None)
    amazon = load_settings({"dynamodb_endpoint_url": "https://dynamodb.eu-west-1.amazonaws.com"}, environ={})
    assert not records_apply(amazon, None) and records_apply(amazon, service_name("1"))
    assert not records_apply(load_settings({"kms_key_id": "alias/citylogin"}, environ={}), None)


# --service as an attacker or a careless hand would give it: a pid is ASCII digits alone, an address is compared
# parsed (scheme, host, port with its default, path), and anything with a user, a query or a fragment is none.
HOSTS = st.sampled_from(["localhost", "127.0.0.1", "[::1]", "id.example.com", "staging.example.com"])


@hypothesis.settings(max_examples=300)
@given(scheme=st.sampled_from(["http", "https"]), host=HOSTS, port=st.integers(1, 65535),
       path=st.sampled_from(["", "/", "/id", "/id/"]), upper=st.booleans(), explicit_default=st.booleans(),
       slash=st.booleans())
def test_an_address_names_the_service_however_it_is_spelled(scheme, host, port, path, upper, explicit_default, slash):
    record = RunningService(**_record(f"{scheme}://{host}:{port}{path}"))
    default = 443 if scheme == "https" else 80
    netloc = host if port == default and not explicit_default else f"{host}:{port}"
    if upper:
        scheme, netloc = scheme.upper(), netloc.upper()
    assert service_name(f"{scheme}://{netloc}{path.rstrip('/')}{'/' if slash else ''}").names(record)


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


@hypothesis.settings(max_examples=300)
@given(host=HOSTS, port=st.integers(1, 65535), other_host=HOSTS, other_port=st.integers(1, 65535),
       scheme=st.sampled_from(["http", "https"]), other_scheme=st.sampled_from(["http", "https"]))
def test_another_host_port_or_scheme_never_names_the_service(host, port, other_host, other_port, scheme,
                                                             other_scheme):
    same_host = host == other_host or {host, other_host} <= LOOPBACK_HOSTS  # this machine, however spelled
    hypothesis.assume((same_host, port, scheme) != (True, other_port, other_scheme))
    record = RunningService(**_record(f"{scheme}://{host}:{port}"))
    assert not service_name(f"{other_scheme}://{other_host}:{other_port}").names(record)


# The loopback as a person copies it from serve's lines (gunicorn says 127.0.0.1, serve says localhost) or types
# it: every loopback address and localhost are this machine, whatever the case, brackets or final dot.
LOOPBACK_SPELLINGS = st.one_of(
    st.sampled_from(["localhost", "LocalHost", "localhost.", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]",
                     "[::FFFF:7F00:1]"]),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)).map(lambda t: "127.%d.%d.%d" % t))
# Not this machine, or not an address at all: never the loopback service, however close it looks.
ELSEWHERE = st.one_of(
    st.sampled_from(["localhost.example.com", "127.0.0.1.nip.io", "evil-localhost", "[::2]", "[::ffff:10.0.0.1]",
                     "128.0.0.1", "126.255.255.255", "0.0.0.0", "[::]", "10.0.0.1", "192.168.1.1", "local",
                     "localhost..", "127.0.0.1.", "[fe80::1]", "2130706433", "0x7f.1", "127.1"]),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
    .filter(lambda t: t[0] != 127).map(lambda t: "%d.%d.%d.%d" % t))


@hypothesis.settings(max_examples=300)
@given(served=st.sampled_from(["localhost", "127.0.0.1", "[::1]"]), typed=LOOPBACK_SPELLINGS,
       port=st.integers(1, 65535), listened=st.booleans(), slash=st.booleans())
def test_every_loopback_spelling_names_the_service_on_the_loopback(served, typed, port, listened, slash):
    """Whether serve announced the loopback address as its links' (its url) or only listens there (its public
    URL set elsewhere): any spelling of the loopback at its port names it."""
    url = f"http://{served}:{port}"
    record = RunningService(**(_record("https://id.example.com", listen_url=url) if listened else _record(url)))
    assert service_name(f"http://{typed}:{port}{'/' if slash else ''}").names(record), typed


@hypothesis.settings(max_examples=300)
@given(served=st.sampled_from(["localhost", "127.0.0.1", "[::1]"]), typed=ELSEWHERE, port=st.integers(1, 65535),
       user=st.sampled_from(["", "localhost@", "u:p@", "127.0.0.1:{port}@"]), listened=st.booleans())
def test_no_other_host_and_no_user_names_the_service_on_the_loopback(served, typed, port, user, listened):
    url = f"http://{served}:{port}"
    record = RunningService(**(_record("https://id.example.com", listen_url=url) if listened else _record(url)))
    given_text = f"http://{user.format(port=port)}{typed}:{port}"
    try:
        named = service_name(given_text)
    except ValueError:
        return  # refused as a value of --service
    assert not named.names(record), given_text
    if user:
        raise AssertionError(f"{given_text} was taken as an address")


@pytest.mark.parametrize("typed", ["http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000",
                                   "http://127.8.9.10:5000/"])
def test_a_serve_on_every_address_is_named_by_the_loopback_at_its_port(typed):
    record = RunningService(**_record("http://host.example:5000", listen_url="http://0.0.0.0:5000"))
    assert service_name(typed).names(record)
    assert not service_name(typed.replace("5000", "5001")).names(record)


def test_loopback_services_at_one_port_are_told_apart_by_pid(tmp_path):
    """Two serves at one port, one on 127.0.0.1 and one on ::1: the loopback names both, so it names neither."""
    four, six = (RunningService(**_record(f"http://{host}:5000", pid=pid)) for host, pid in (("127.0.0.1", 7),
                                                                                               ("[::1]", 8)))
    with pytest.raises(ServiceRefused) as refused:
        chosen_service(settings_in(tmp_path), [four, six], service_name("http://localhost:5000"))
    assert "2 citylogin services run as http://localhost:5000" in refused.value.message
    assert chosen_service(settings_in(tmp_path), [four, six], service_name("8")) == six


@hypothesis.settings(max_examples=300)
@given(port=st.integers(1, 65535), trick=st.sampled_from([
    "http://localhost:{port}@evil.example", "http://evil.example#@localhost:{port}", "http://u:p@localhost:{port}",
    "http://localhost:{port}?x=1", "http://localhost:{port}/#frag", "ftp://localhost:{port}", "//localhost:{port}",
    "localhost:{port}", "http://localhost:{port}:{port}", "http://localhost:99999{port}", "http:///:{port}",
    "javascript:alert({port})"]))
def test_an_address_with_a_user_query_fragment_or_no_host_names_no_service(port, trick):
    given_text = trick.format(port=port)
    record = RunningService(**_record(f"http://localhost:{port}"))
    try:
        named = service_name(given_text)
    except ValueError:
        return  # refused as a value of --service: a usage error
    assert not named.names(record), given_text


@hypothesis.settings(max_examples=300)
@given(text=st.text(alphabet=string.digits + "+- \t٠١٢٣٤٥٦٧٨٩０１２¹" + "x.", min_size=1, max_size=8))
def test_a_pid_is_ascii_digits_alone(text):
    record = RunningService(**_record("http://localhost:5000", pid=12))
    try:
        named = service_name(text)
    except ValueError:
        assert not (text.isascii() and text.isdigit())
        return
    assert named.pid is not None and text.isascii() and text.isdigit()
    assert named.names(record) == (int(text) == 12)


def test_address_of_keeps_what_a_service_is_told_apart_by():
    assert address_of("http://LOCALHOST/") == ("http", "localhost", 80, "")
    assert address_of("https://id.example.com/base/") == ("https", "id.example.com", 443, "/base")
    assert address_of("http://[::1]:5000") == ("http", "::1", 5000, "")
    assert address_of("http://[::1]x:5000") is None and address_of("http://localhost:05000") is None
    assert address_of(None) is None and address_of("http://localhost:0x50") is None
    assert ServiceName(given="x").names(RunningService(**_record("http://localhost:5000"))) is False


def _record(url: str, pid: int = 1, listen_url: str = "") -> dict:
    defining = {"url": url, "dynamodb_endpoint_url": "http://127.0.0.1:8000", "data_dir": "/srv/citylogin/.data",
                "table_prefix": "citylogin_", "jwt_issuer": "citylogin", "key_encryption": "data_dir"}
    return {"pid": pid, "started": "1", **defining, "fingerprint": deployment_fingerprint(**defining),
            "listen_url": listen_url}


def test_on_an_endpoint_a_data_directory_of_the_commands_own_is_no_other_deployment_unless_it_holds_the_key(
        tmp_path, two):
    """Hosts that share a DynamoDB each have a data directory of their own (a rolling deploy's operator runs the
    command on another host than the service): it names another deployment only where the service's key is kept."""
    on_endpoint = {"dynamodb_endpoint_url": "http://127.0.0.1:5003", "key_encryption_key": "A" * 43 + "="}
    sealed_by_setting = service(tmp_path / "production" / ".data", pid=303, port=5002, key_encryption="setting")
    elsewhere = settings_in(tmp_path, **on_endpoint, data_dir=str(tmp_path / "operator-host"))
    assert chosen_service(elsewhere, [sealed_by_setting], None) == sealed_by_setting
    _, production = two  # its key is the generated one of its data directory: another directory cannot open it
    with pytest.raises(ServiceRefused) as refused:
        chosen_service(settings_in(tmp_path, dynamodb_endpoint_url="http://127.0.0.1:5003",
                                   data_dir=str(tmp_path / "operator-host")), [production], None)
    assert "CITYLOGIN_DATA_DIR is" in refused.value.message
