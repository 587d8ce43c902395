"""Latency at 1k and at 100k users: one real user measured after the tables were seeded with
clones of another real user (seeding.py), first up to the small size, then up to the large one."""
from __future__ import annotations

import time

import flows
from citylogin.client import Client
from common import dynamo
from loadgen import local_session, summarize, time_calls
from measurements import bench_login_post_paired, checked_get, log
from seeding import capture_template, seed_clones


def template_user(base_url: str, endpoint_url: str, names: dynamo.TableNames, run: str):
    """Register and log in the user to clone, and read back its items."""
    name = f"b{run}_template"
    user = flows.register(base_url, name)
    flows.login_with_retry(user)
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url)
    time.sleep(0.5)  # the writes made after the login's response (a history row) must be there
    return capture_template(client, names, user_uuid=user.key_file.user_uuid, username=name,
                            email=f"{name}@example.com")


def measure_user(probe: Client, cfg: dict) -> dict[str, dict]:
    """POST /login/ (paired with a verify), then /session/me one at a time with the newest token."""
    out = bench_login_post_paired(probe, cfg["scale_login_n"])
    http = local_session()
    me = checked_get(http, probe.base_url + "/session/me", flows.auth_headers(probe))
    time_calls(me, count=20, max_seconds=30)
    out["me"] = summarize(time_calls(me, count=cfg["scale_me_n"], max_seconds=120))
    return out


def bench_scale(base_url: str, endpoint_url: str, names: dynamo.TableNames, run: str, cfg: dict) -> dict:
    """Seed to each size in cfg["scale_users"], measure the probe user at each."""
    template = template_user(base_url, endpoint_url, names, run)
    log(f"  template: {template.item_count} items in {len(template.items)} tables")
    probe = flows.register(base_url, f"b{run}_probe")
    flows.login_with_retry(probe)
    out = {"template_items": {table: len(texts) for table, texts in template.items.items()}, "sizes": {}}
    seeded = 0
    for size in cfg["scale_users"]:
        log(f"  seeding {size - seeded} clones (to {size})")
        seeding = seed_clones(endpoint_url, template, users=size - seeded, threads=cfg["seed_threads"])
        seeded = size
        log(f"  seeded {seeding['items']} items in {seeding['seconds']:.1f}s; measuring the probe user")
        out["sizes"][str(size)] = {"seeding": seeding, **measure_user(probe, cfg)}
    return out
