"""userinfo and introspection in one process, citylogin beside the provider floor and beside citylogin's own
code of an earlier commit, in alternating blocks (issue 66, round 2):

    .venv/bin/python bench/read_rows.py userinfo --rounds 12 --block 200 \\
        --before HEAD~1 --swap common.keys.jwt_keys:JwtKeyRing.decode

Not a test. The set-up is bench/profile_row.py's (DynamoDB Local in memory, `citylogin init`, one app, a
device signed in through gunicorn, one code flow for an access token); the floor (bench/peer_floor.py)
gets its table and one access token's record of its own on the same DynamoDB Local. The measured
requests go to the apps in this process through Flask's test client, each answer read whole and closed
as a server closes it; the figure is `time.thread_time()` per request over each block. The sides take
turns block by block, in the order A B C C B A ..., so that a machine shared with other work loads each
side alike; only figures of the same run compare.

`--before REV --swap MODULE:ATTR ...`: a third side, citylogin with each named function (or method)
taken from REV's source of its module, swapped in for that side's blocks only: what one change gained,
measured against its own before in the same minutes.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import types
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.profile_row import _basic, _set_up  # noqa: E402

FLOOR_CLIENT_ID, FLOOR_CLIENT_SECRET = "floor-app", "floor-secret-" + secrets.token_hex(8)


def _floor(endpoint_url: str, prefix: str) -> tuple[Any, str]:
    """The floor's app in this process, with one access token's record: (app, token)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bench import peer_floor
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    os.environ.update({"FLOOR_SECRET": secrets.token_hex(32), "FLOOR_RSA_KEY": pem.decode(),
                       "FLOOR_ISSUER": "http://localhost", "FLOOR_CLIENT_ID": FLOOR_CLIENT_ID,
                       "FLOOR_CLIENT_SECRET": FLOOR_CLIENT_SECRET, "FLOOR_REDIRECT_URI": "https://bench.example/cb"})
    peer_floor.PeerFloorTable(endpoint_url, prefix).create()
    app = peer_floor.create_app()
    token = secrets.token_urlsafe(32)
    floor = app.extensions["peer_floor"]
    floor.db.put_item(TableName=floor.table, Item={
        "k": {"S": "at#" + hashlib.sha256(token.encode()).hexdigest()}, "sub": {"S": "someone"},
        "grant": {"S": "g"}, "exp": {"N": str(int(time.time()) + 3600)}, "scope": {"S": peer_floor.SCOPE}})
    return app, token


def _closing(app: Any) -> Any:
    from flask.testing import FlaskClient

    class ClosingClient(FlaskClient):
        def open(self, *args: Any, **kwargs: Any):  # type: ignore[override]
            kwargs.setdefault("buffered", True)
            return super().open(*args, **kwargs)
    app.test_client_class = ClosingClient
    return app.test_client()


def _one(client: Any, row: str, path: str, token: str, basic: str) -> Callable[[], None]:
    def one() -> None:
        if row == "userinfo":
            answer = client.get(path, headers={"Authorization": "Bearer " + token})
        else:
            answer = client.post(path, headers={"Authorization": basic}, data={"token": token})
        if answer.status_code != 200 or (row == "introspection" and not answer.get_json()["active"]):
            raise RuntimeError(f"{row} {path}: {answer.status_code} {answer.get_data(as_text=True)[:300]}")
    return one


def _swapper(rev: str, names: list[str]) -> tuple[Callable[[], None], Callable[[], None]]:
    """(to before, back to now): each MODULE:ATTR[.ATTR] from REV's source of MODULE."""
    swaps = []
    for name in names:
        module_name, _, attribute = name.partition(":")
        source = subprocess.run(["git", "show", f"{rev}:{module_name.replace('.', '/')}.py"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        old = types.ModuleType(f"_before_{module_name.replace('.', '_')}")
        old.__file__ = str(ROOT / f"{module_name.replace('.', '/')}.py")
        sys.modules[old.__name__] = old  # its dataclasses look their module up
        exec(compile(source, old.__file__, "exec"), old.__dict__)  # noqa: S102 - the project's own source
        owner, old_owner = importlib.import_module(module_name), old
        *path, last = attribute.split(".")
        for part in path:
            owner, old_owner = getattr(owner, part), getattr(old_owner, part)
        swaps.append((owner, last, owner.__dict__[last], old_owner.__dict__[last]))

    def before() -> None:
        for owner, last, _, then in swaps:
            setattr(owner, last, then)

    def now() -> None:
        for owner, last, current, _ in swaps:
            setattr(owner, last, current)
    return before, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("row", choices=("userinfo", "introspection"))
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--before", metavar="REV", help="a commit whose functions --swap takes")
    parser.add_argument("--swap", nargs="*", default=[], metavar="MODULE:ATTR")
    parser.add_argument("--no-floor", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="read-rows-") as work:
        env, held, app = _set_up(stack, Path(work), "userinfo", 1)
        os.environ.update({name: value for name, value in env.items() if name.startswith("CITYLOGIN_")})
        from citylogin.app import create_app
        token = held["tokens"]["access_token"]
        path = "/oidc/userinfo" if args.row == "userinfo" else "/session/introspect"
        sides: dict[str, tuple[Callable[[], None], Callable[[], None], Callable[[], None]]] = {}
        noop = lambda: None  # noqa: E731
        citylogin = _one(_closing(create_app()), args.row, path, token, _basic(app))
        sides["citylogin"] = (citylogin, noop, noop)
        if args.before and args.swap:
            before, now = _swapper(args.before, args.swap)
            sides[f"citylogin@{args.before}"] = (citylogin, before, now)
        if not args.no_floor:
            floor_app, floor_token = _floor(env["CITYLOGIN_DYNAMODB_ENDPOINT_URL"], env["CITYLOGIN_TABLE_PREFIX"])
            basic = "Basic " + base64.b64encode(f"{FLOOR_CLIENT_ID}:{FLOOR_CLIENT_SECRET}".encode()).decode()
            floor_path = "/userinfo" if args.row == "userinfo" else "/introspect"
            sides["floor"] = (_one(_closing(floor_app), args.row, floor_path, floor_token, basic), noop, noop)
        figures: dict[str, list[float]] = {name: [] for name in sides}
        order = list(sides)
        for one, enter, leave in sides.values():  # warm-up
            enter()
            for _ in range(30):
                one()
            leave()
        for round_ in range(args.rounds):
            for name in (order if round_ % 2 == 0 else order[::-1]):
                one, enter, leave = sides[name]
                enter()
                started = time.thread_time()
                for _ in range(args.block):
                    one()
                figures[name].append(1000 * (time.thread_time() - started) / args.block)
                leave()
        print(f"{args.row}: ms of the request thread's CPU per request, {args.rounds} blocks of {args.block} a side"
              f" (load average {os.getloadavg()[0]:.1f})")
        for name, values in figures.items():
            print(f"  {name:28s} median {statistics.median(values):.3f}  min {min(values):.3f}  "
                  f"max {max(values):.3f}")


if __name__ == "__main__":
    main()
