"""Latency at 1k and at 100k users, measured interleaved: two table sets (one prefix each), each
seeded with clones of a real user of its own (seeding.py), one gunicorn per table set, and a real
probe user on each measured in rounds ABBA between the two servers, so that drift falls on both."""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import flows
from citylogin.client.api import Client
from common.database import dynamo
from loadgen import local_session, summarize
from measurements import log, verifier
from seeding import capture_template, seed_clones
from servers import app_environment, gunicorn_app, run_init

ABBA = ("A", "B", "B", "A")


@dataclass(frozen=True)
class ScaleSetup:
    sizes: tuple[int, int]
    probes: tuple[Client, Client]  # a real user on the small and on the large table set
    seeding: dict[str, dict]  # size -> the seeding's figures


def template_user(base_url: str, endpoint_url: str, names: dynamo.TableNames, run: str):
    """Register and log in the user to clone, and read back its items."""
    name = f"b{run}_template"
    user = flows.register(base_url, name)
    flows.login_with_retry(user)
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url)
    time.sleep(0.5)  # the writes made after the login's response (a history row) must be there
    return capture_template(client, names, user_uuid=user.key_file.user_uuid, username=name,
                            email=f"{name}@example.com")


def start_scale(stack: ExitStack, *, endpoint_url: str, work_dir: Path, cfg: dict, run: str,
                workers: int, threads: int) -> ScaleSetup:
    """Per size: `citylogin init` on its own prefix, a gunicorn, the template, the clones, a probe."""
    probes, seeding = [], {}
    for size in cfg["scale_users"]:
        prefix = f"u{size}_"
        env = app_environment(endpoint_url=endpoint_url, data_dir=work_dir / "data", table_prefix=prefix)
        run_init(env)
        app = stack.enter_context(gunicorn_app(env, log_path=work_dir / f"gunicorn-{prefix}.log", workers=workers,
                                               threads=threads))
        template = template_user(app.base_url, endpoint_url, dynamo.TableNames.with_prefix(prefix), run)
        log(f"  {prefix}: template of {template.item_count} items; seeding {size:,} clones")
        seeding[str(size)] = seed_clones(endpoint_url, template, users=size, threads=cfg["seed_threads"])
        log(f"  seeded {seeding[str(size)]['items']} items in {seeding[str(size)]['seconds']:.1f}s")
        probe = flows.register(app.base_url, f"b{run}_probe")
        flows.login_with_retry(probe)
        probes.append(probe)
    small, large = cfg["scale_users"]
    return ScaleSetup(sizes=(small, large), probes=(probes[0], probes[1]), seeding=seeding)


def bench_scale(setup: ScaleSetup, cfg: dict, max_seconds: float = 300) -> dict:
    """POST /login/ (paired with an in-process verify) and GET /session/me on each probe, in rounds
    ABBA between the two sizes; p50s per size and large / small."""
    http = [local_session(), local_session()]
    verify = verifier()
    samples = [{"login_post": [], "login_post_minus_verify_paired": [], "me": []} for _ in range(2)]
    for side in (0, 1):  # warm-up (after seeding, DynamoDB Local may still be collecting garbage)
        for _ in range(3):
            flows.login_by_hand(setup.probes[side], http[side])
            flows.timed_me(setup.probes[side], http[side])
    letters = 4 * cfg["rounds"]
    logins, reads = max(1, cfg["scale_login_n"] // letters), max(1, cfg["scale_me_n"] // letters)
    deadline = time.monotonic() + max_seconds
    for letter in ABBA * cfg["rounds"]:
        side = 0 if letter == "A" else 1
        probe, session, into = setup.probes[side], http[side], samples[side]
        for _ in range(logins):
            post = flows.login_by_hand(probe, session)
            start = time.perf_counter()
            verify()
            into["login_post"].append(post)
            into["login_post_minus_verify_paired"].append(post - (time.perf_counter() - start))
        into["me"] += [flows.timed_me(probe, session) for _ in range(reads)]
        if time.monotonic() > deadline:
            break
    sizes = {str(size): {"seeding": setup.seeding[str(size)], **{k: summarize(v) for k, v in samples[side].items()}}
             for side, size in enumerate(setup.sizes)}
    return {"sizes": sizes}
