"""Shared fixtures: an in-memory DynamoDB Local per test process (in the fast tier one for the run, shared
by all xdist workers), apps built through the factories."""
from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from common.database.dynamodb_local import DynamoDBLocal

# The worker's one Chromium (`browser`), for the browser tests and the conformance plans' person.
pytest_plugins = ("tests.support.chromium", "tests.support.upstream")

# Cheap Argon2id for tests; the benchmark measures the real parameters.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 8192, "argon2_parallelism": 1}
# The suite registers and renews far more from 127.0.0.1 than a person would; the tests of these
# limits set their own.
RAISED_LIMITS = {"registrations_per_hour_per_ip": 10**6, "registration_refusals_per_hour_per_ip": 10**6,
                 "renewals_per_day_per_device": 10**6, "authorization_requests_per_minute_per_ip": 10**6,
                 "pushed_requests_per_minute_per_ip": 10**6, "device_authorizations_per_minute_per_ip": 10**6,
                 "user_codes_per_minute_per_ip": 10**6, "oidc_registrations_per_minute_per_ip": 10**6,
                 "challenges_per_minute_per_ip": 10**6}


# The fast tier (`./scripts/test.sh --fast`) is every test not marked slow. Whole folders and modules
# that start servers as subprocesses (gunicorn, nginx, `citylogin serve`, a standalone service), drive
# a browser, soak or fuzz are slow, and so is every test of a module-scoped service process.
SLOW_FOLDERS = {"browser", "examples"}
# Where the folders above are looked for: tests/<folder>, never in the checkout's own path (a checkout at
# /srv/examples/citylogin would otherwise make every test slow).
TESTS = Path(__file__).resolve().parent
SLOW_MODULES = {
    "test_gunicorn_body_limit", "test_gunicorn_slow_clients", "test_parked_streams", "test_gunicorn_start",
    "test_metrics_gunicorn", "test_serve_gunicorn", "test_gunicorn_static_answers", "test_stop_with_held_polls",
    "test_serve", "test_serve_slow_client", "test_commands_find_serve", "test_public_url", "test_standalone_services",
    "test_many_hosts",
    "test_key_ring_reload", "test_openapi_fuzz", "test_soak", "test_registration_service_process",
    "test_nginx_mtls", "test_nginx_crl", "test_nginx_access_log", "test_nginx_forward_auth", "test_aws_template",
    "test_guard_live", "test_ssf_push", "test_event_outbox", "test_backchannel_logout", "test_openid_client",
    "test_two_processes", "test_eviction_order_two_processes", "test_device_flow_two_processes", "test_native_app",
    "test_mixed_versions", "test_openid_client_device", "test_cli_enrol",
    "test_dormant_passwords", "test_dormant_costly_set", "test_imported_login_timing",
    "test_push_recovery", "test_smtp_mail", "test_smtp_end_to_end", "test_mail_outbox_smtp", "test_operator_mail",
    "test_sigv4_signatures", "test_aws_walk_through", "test_dynamodb_tls", "test_dynamodb_tls_chaos"}
# Left out of the fast tier for their time alone (half of it): races, injected faults, timing and
# whole flows through the CLI; each package keeps faster tests of the same code in the tier.
SLOW_MODULES |= {
    "test_login_failures", "test_login_races", "test_account_deletion", "test_deletion_personal_data",
    "test_token_security", "test_session_list",
    "test_cli_account", "test_cli_session", "test_admin_cli", "test_bad_input", "test_slow_dynamodb",
    "test_dynamodb_outage", "test_notifications_off_request_path", "test_device_classes", "test_pairing_rules",
    "test_password_rechecks", "test_renewal", "test_admin_apps", "test_throttled_dynamodb",
    "test_rotating_credentials", "test_dynamodb_throttling", "test_guard_nonce", "test_ssf_poll", "test_bench_floor",
    "test_reset_mail_budget", "test_registration_held_address", "test_admin_api", "test_session_endpoints",
    "test_data_export_faults", "test_runtime_folder", "test_gunicorn_worker_plain_requests", "test_carried_claims",
    "test_imported_passwords"}
SLOW_FIXTURES = {"registration_url"}
SLOW_TESTS = {
    "test_two_enrols_with_one_code_at_once_store_one_device",                # races of first devices: threads
    "test_enrols_with_two_codes_racing_never_store_two_first_devices",
    "test_store_first_device_stores_one_of_many_at_once",
    "test_batches_cost_a_fraction_of_a_call_per_account",                    # 300 accounts imported twice
    "test_every_module_imports_alone_in_a_fresh_interpreter",   # a forked interpreter per module: 10 s of CPU
    "test_a_token_of_a_retired_key_put_back_is_refused_by_a_process_started_later",  # two app starts
    "test_pairing_recovery_renewal_and_logins_racing_a_deletion_leave_nothing",
    "test_the_export_holds_every_item_stored_about_the_person_and_no_secret",  # an account used every way, Scans
    "test_malformed_bodies_never_cause_a_500",
    "test_relabelling_while_logging_in_never_exceeds_a_class_limit",
    "test_twenty_racing_registrations_of_one_username_through_conflicts",
    "test_apps_cli_adds_lists_shows_rotates_and_removes_an_app",  # waits out the apps' 2-s cache twice
    "test_a_quiet_long_poll_keeps_the_feed_heard",                 # a held poll cut at stale_after / 2
    "test_a_proof_counts_once_on_this_host_and_on_another",       # a second service process
    "test_one_proof_sent_at_once_to_two_processes_is_accepted_exactly_once",
    "test_a_store_shared_by_two_guards_refuses_a_proof_replayed_to_the_other",  # two guards' feeds
    "test_with_the_feed_stale_introspection_names_the_key_and_the_proof_is_still_checked",  # waits out staleness
    "test_the_python_client_answers_each_apps_nonce_demand_by_itself",  # a `citylogin serve` process
    "test_a_ring_backed_up_wiped_and_restored_accepts_the_tokens_issued_before",  # three app starts
    "test_a_ring_of_more_items_than_one_transaction_holds_is_restored_whole",     # 120 sealed writes
    "test_a_backup_restores_into_a_new_data_directory_given_its_key",            # two DynamoDB Local starts
}
# Tests whose assertion is a time, a latency or a cost ratio, or that load the machine on purpose:
# beside other tests running in parallel they measure the others. scripts/test.sh runs them alone,
# after the parallel pass (module name, test name or None for the whole module).
SERIAL = {
    # a removed app's tokens refused by its guard, userinfo and introspection within 2 s (SPEC §14)
    ("test_guard_app_grants", "test_a_removed_apps_tokens_are_refused_everywhere_within_two_seconds"),
    # a logout token at the app within 1 s of the displacing login (SPEC §14)
    ("test_backchannel_logout", "test_the_logout_token_arrives_within_a_second_of_the_displacing_login"),
    # the same bound for an app back from an outage longer than the push backoff's longest step
    ("test_push_recovery", "test_an_app_back_from_an_outage_hears_a_new_logout_within_a_second"),
    ("test_gunicorn_slow_clients", None),                  # /healthz < 1 s beside 500 streams and 300 slow sockets
    ("test_events", "test_two_hundred_streams_cost_bounded_reads_and_all_hear_in_time"),  # 200 streams, < 2 s
    ("test_crypto", "test_every_check_costs_the_same_whichever_parameters_made_the_hash"),  # a time ratio
    ("test_crypto", "test_an_undeclared_legacy_set_is_what_leaked"),                       # a time ratio
    ("test_login_failures", "test_unknown_user_costs_the_time_of_a_wrong_password"),        # a time ratio
    ("test_login_failures", "test_a_dormant_hash_of_old_parameters_costs_what_an_unknown_user_costs"),
    ("test_dormant_costly_set", None),  # a CPU-time ratio, at argon2-cffi's default parameters (64 MiB)
    # Twenty racers for one name must never get a 503; beside busy workers sharing DynamoDB Local,
    # a racer's 8 conflict retries (common/database/dynamo.py) can run out, which is a 503.
    ("test_registration_service_process", "test_twenty_racing_registrations_of_one_username"),
    ("test_registration_service_process", "test_twenty_racing_registrations_of_one_email_in_other_case"),
    ("test_transaction_conflicts", "test_twenty_racing_registrations_of_one_username_through_conflicts"),
    # An ended session refused by every guard within 1 s (a 0.25-s feed poll, two processes), and
    # /healthz < 1 s beside 300 streams: margins that a worker busy beside them could eat.
    ("test_guard_live", "test_the_guard_refuses_a_session_ended_in_citylogin_within_a_second"),
    ("test_guard_live", "test_every_process_of_one_app_refuses_within_a_second"),
    ("test_guard_feed", "test_a_revoked_session_is_refused_within_a_second_from_the_feed"),  # the same, in-process
    # a quiet feed heard without a gap of 2 s for 5 s: a re-poll slowed by a busy worker would leave one
    ("test_guard_feed", "test_a_quiet_long_poll_keeps_the_feed_heard"),
    ("test_events", "test_displaced_device_is_told_why_within_two_seconds"),  # the event < 2 s after the login
    # the notes app's API refuses a displaced device's token within 1 s behind the guard, 2 s by pushed events
    ("test_notes", "test_a_displaced_device_is_refused_by_the_apps_api"),
    ("test_web_app", "test_continue_logs_the_other_device_out_live"),  # the other page's banner within 3.5 s
    ("test_nginx_mtls", "test_session_events_stream_through_nginx"),  # the event through nginx < 2.5 s: unbuffered
    ("test_parked_streams", "test_three_hundred_streams_on_four_threads_all_beat_and_all_hear_the_end"),
}


# Hypothesis's per-example deadline (200 ms) judges the machine's speed, not the property: on a busy
# machine one example of a pure check took 420 ms. No test here is timed by it.
hypothesis_settings.register_profile("citylogin", deadline=None)
hypothesis_settings.load_profile("citylogin")


def pytest_configure(config):
    # The developer's own CITYLOGIN_* settings must not leak into the tests.
    for name in [n for n in os.environ if n.startswith("CITYLOGIN_")]:
        del os.environ[name]
    # Nor their running `citylogin serve`: the records of where one runs (citylogin.server.running_services) go to a
    # folder of this test process, which the serves and commands the tests start inherit.
    config._citylogin_runtime = tempfile.mkdtemp(prefix="citylogin-runtime-")
    os.environ["XDG_RUNTIME_DIR"] = config._citylogin_runtime


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """A test that leaves a CITYLOGIN_* variable behind fails itself, once its fixtures are undone, and
    the variable goes: left there, it would configure every app the worker builds after it (click's
    CliRunner swaps os.environ while it runs, and two of them at once in threads restore each other's)."""
    outcome = yield
    left = sorted(name for name in os.environ if name.startswith("CITYLOGIN_"))
    for name in left:
        del os.environ[name]
    if left and outcome.excinfo is None:
        pytest.fail(f"{item.nodeid} left {', '.join(left)} in os.environ", pytrace=False)


# The long tier: proofs that take minutes, left out of both passes of scripts/test.sh and run after them by
# `scripts/test.sh --long` (.ci/run runs both). Each is marked `long` (and slow).
LONG = {
    # two server processes for SOAK_SECONDS and a minute of checks, both cores busy (SPEC §5, §11, §12)
    ("test_soak", "test_randomized_soak_on_two_processes_keeps_every_invariant"),
}


# The modules that hold a test of scripts/test.sh's serial pass and of its long tier: those passes import no other
# (collecting the whole suite to deselect all but these cost the serial pass 15 s of CPU).
ALONE_MODULES = {"serial and not long": {module for module, _ in SERIAL}, "long": {module for module, _ in LONG}}


def pytest_ignore_collect(collection_path, config):
    """Under `-m "not slow"` (the fast tier) the folders and modules that are slow whole are not even
    imported: their imports (Playwright, cfn-lint, moto ...) would cost every worker's collection. Under
    scripts/test.sh's serial pass and long tier, only the modules that hold one of their tests are."""
    markexpr = config.getoption("markexpr")
    is_test_module = collection_path.suffix == ".py" and collection_path.name.startswith("test_")
    if markexpr in ALONE_MODULES:
        return True if is_test_module and collection_path.stem not in ALONE_MODULES[markexpr] else None
    if markexpr != "not slow":
        return None
    whole_folder = collection_path.name in SLOW_FOLDERS and collection_path.is_dir() and collection_path.parent == TESTS
    whole_module = is_test_module and _slow_whole(collection_path)
    return True if whole_folder or whole_module or _slow_whole_folder(collection_path) else None


# A module marked slow whole by its own `pytestmark = pytest.mark.slow` line.
MARKED_SLOW = re.compile(r"^pytestmark = pytest\.mark\.slow\b", re.MULTILINE)


@functools.cache
def _slow_whole(module: Path) -> bool:
    """Whether a test module is slow whole, by SLOW_MODULES or its own mark: the fast tier does not
    import it only to deselect every test (28 modules marked so, Playwright among their imports)."""
    return module.stem in SLOW_MODULES or bool(MARKED_SLOW.search(module.read_text(encoding="utf-8")))


def _slow_whole_folder(path: Path) -> bool:
    """A folder whose test modules are all slow whole: nor is its conftest.py imported (tests/oidc/conformance)."""
    modules = list(_test_modules(path)) if path.is_dir() else []
    return bool(modules) and all(_slow_whole(module) for module in modules)


def _test_modules(folder: Path) -> Iterator[Path]:
    """The test modules under a folder, in the folders pytest looks into (not .venv, node_modules ...)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.name.startswith((".", "__")) and entry.name != "node_modules":
            yield from _test_modules(entry)
        elif entry.name.startswith("test_") and entry.suffix == ".py":
            yield entry


def pytest_itemcollected(item):
    path = item.path
    module, test = path.stem, getattr(item, "originalname", item.name)
    if (module, None) in SERIAL or (module, test) in SERIAL:
        item.add_marker(pytest.mark.serial)
    if (module, test) in LONG:
        item.add_marker(pytest.mark.long)
    folders = path.relative_to(TESTS).parts[:-1] if path.is_relative_to(TESTS) else ()
    if (SLOW_FOLDERS.intersection(folders) or module in SLOW_MODULES or test in SLOW_TESTS
            or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())) or item.get_closest_marker("serial")
            or item.get_closest_marker("long")):
        item.add_marker(pytest.mark.slow)


_ENDPOINT_KEY = "citylogin_dynamodb_endpoint"


def _one_engine_for_the_run(config) -> bool:
    """The fast tier's workers share the controller's one DynamoDB Local; the whole suite's each start
    their own. A CreateTable costs DynamoDB Local (in SQLite, under it) more the more tables the engine
    already holds, about in proportion (the time goes in SQLite's CREATE TABLE). Each test module
    makes its own 17 (its table prefix): the whole suite makes about 450 such sets, 7,600 tables, and a
    set cost 0.15 s of Java CPU on a new engine but 0.4-0.6 s after 200 sets. An engine per worker holds
    a third of them (2,200-2,800 each): the whole suite went from 25:21 to 20:47, its engines' CPU from
    742 to 564 s. The fast tier makes few; there a second and third Java process would cost more than
    they save. (Since then each module's tables are deleted when it ends, tests/support/tables.py, so an
    engine no longer grows to thousands; the engines per worker stayed: each runs its SQLite in one thread.)"""
    return config.getoption("markexpr") == "not slow"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Under xdist in the fast tier the controller runs the one DynamoDB Local and hands its endpoint to
    each worker (each test module has its own table prefix); elsewhere each worker starts its own."""
    config = node.config
    if not _one_engine_for_the_run(config):
        return
    if not hasattr(config, "_citylogin_dynamodb"):
        config._citylogin_dynamodb = DynamoDBLocal().start()
    node.workerinput[_ENDPOINT_KEY] = config._citylogin_dynamodb.endpoint_url


def pytest_unconfigure(config):
    local = getattr(config, "_citylogin_dynamodb", None)
    if local is not None:
        local.stop()
    shutil.rmtree(getattr(config, "_citylogin_runtime", ""), ignore_errors=True)


_RUN_TABLES = pytest.StashKey["RunTables"]()


@pytest.fixture(scope="session")
def dynamodb_endpoint(request):
    from tests.support.tables import run_tables
    shared = getattr(request.config, "workerinput", {}).get(_ENDPOINT_KEY)
    with contextlib.ExitStack() as stack:
        endpoint = shared or stack.enter_context(DynamoDBLocal()).endpoint_url
        request.config.stash[_RUN_TABLES] = stack.enter_context(run_tables(endpoint))
        yield endpoint
        del request.config.stash[_RUN_TABLES]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("citylogin-data")


@pytest.fixture(scope="module")
def table_prefix(request):
    """The module's own set of tables, dropped with the module (tests/support/tables.py says why)."""
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    yield prefix
    tables = request.config.stash.get(_RUN_TABLES, None)
    if tables is not None:
        tables.drop(prefix)


def app_settings(dynamodb_endpoint, data_dir, table_prefix) -> dict:
    """Settings for a test app on these tables; tests add their own keys."""
    return {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
            "table_prefix": table_prefix, "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS,
            "dynamodb_parameter_validation": True,   # production turns botocore's check off; tests keep it
            "deletion_sweep_interval": 0,  # no sweeper thread per test app; its tests turn it on
            "ssf_push_interval": 0,  # nor a pusher (SPEC §11 push), nor a session sweeper; their tests turn them on
            "session_sweep_interval": 0,
            # the tests' apps live on 127.0.0.1: apps that register themselves may name it (the refusals' tests
            # turn this off)
            "oidc_fetch_private_addresses": True,
            "mail_send_interval": 0}  # nor a mail sender: a mail is tried once at once, as before the outbox


@pytest.fixture
def base_config(dynamodb_endpoint, data_dir, table_prefix):
    """Settings for an app in this test module; tests add their own keys."""
    return app_settings(dynamodb_endpoint, data_dir, table_prefix)


@pytest.fixture
def make_server(base_config):
    """start(**settings) -> (url, context): the all-in-one app on a real socket, stopped after the test."""
    from tests.support.fixtures import app_servers
    with app_servers(base_config) as start:
        yield start


@pytest.fixture(scope="module")
def registration_url(dynamodb_endpoint, data_dir, table_prefix):
    """`python -m registration.app_registration` as a real process for this module's tables."""
    from tests.support.services import running_service
    # Its tests race twenty registrations at once: on a loaded machine they are slow, not refused,
    # so twenty hashes may wait (2 cores admit 18 by default) and DynamoDB may take its time.
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir,
              "table_prefix": table_prefix, **FAST_ARGON2, **RAISED_LIMITS,
              "password_hash_queue": 32, "dynamodb_read_timeout": 30}
    with running_service("registration.app_registration", config_env(config)) as url:
        yield url


def config_env(config: dict) -> dict:
    """The same settings as CITYLOGIN_* variables, for service subprocesses."""
    return {f"CITYLOGIN_{k.upper()}": str(v) for k, v in config.items()}


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"
