"""Server CPU per request of a few plain GETs under citylogin's gunicorn settings (deploy/gunicorn.conf.py:
citylogin's worker, 2 workers x 64 threads), the closed loop of the peer bench (4 keep-alive client
threads), the server's CPU read from /proc (bench/cpu.py). With --old DIR, the same server from another
checkout of citylogin (say, the main branch) is measured too, in alternated rounds (old new new old ...),
so that two versions are compared in the same minutes of a shared machine (bench/README.md, issue 66).

    .venv/bin/python bench/worker_cpu.py --old ../citylogin-before --requests 4000 --rounds 2
"""
from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cpu import cpu_delta, tree_cpu_seconds  # noqa: E402
from bench.servers import LOCALHOST_ONLY, PROJECT_ROOT, VENV_BIN, _stop, app_environment, run_init  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal, free_port  # noqa: E402

PATHS = {"discovery": "/.well-known/openid-configuration", "jwks": "/.well-known/jwks.json", "healthz": "/healthz"}
CLIENTS = 4


@contextmanager
def server(env: dict[str, str], checkout: Path, log_path: Path) -> Iterator[tuple[int, int]]:
    """gunicorn -c deploy/gunicorn.conf.py of `checkout` (its code first on the path); (pid, port)."""
    port = free_port()
    env = {**env, "PYTHONPATH": str(checkout), "CITYLOGIN_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with open(log_path, "ab") as log:
        argv = [str(VENV_BIN / "gunicorn"), "-c", str(checkout / "deploy" / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{port}", "citylogin.app:create_app()"]
        process = subprocess.Popen(argv, env=env, cwd=checkout, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get_all(port, "/readyz", 1) == 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"gunicorn did not start; see {log_path}")
            time.sleep(0.2)
        yield process.pid, port
    finally:
        _stop(process)


def get_all(port: int, path: str, count: int) -> int:
    """`count` GETs of `path` on one keep-alive connection; how many were answered 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ok = 0
    try:
        for _ in range(count):
            connection.request("GET", path)
            answer = connection.getresponse()
            answer.read()
            ok += answer.status == 200
    finally:
        connection.close()
    return ok


def measure(pid: int, port: int, path: str, requests: int) -> float:
    """Server CPU ms per request of `requests` GETs from CLIENTS threads at once."""
    get_all(port, path, 200)  # warm
    each = requests // CLIENTS
    answered: list[int] = []
    threads = [threading.Thread(target=lambda: answered.append(get_all(port, path, each))) for _ in range(CLIENTS)]
    before = tree_cpu_seconds({"server": pid})
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spent = cpu_delta(before, tree_cpu_seconds({"server": pid}))["server"]
    if sum(answered) != each * CLIENTS:
        raise RuntimeError(f"{path}: {each * CLIENTS - sum(answered)} requests not answered 200")
    return spent * 1000 / (each * CLIENTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="another checkout to compare with, in alternated rounds")
    parser.add_argument("--requests", type=int, default=4000, help="requests per path and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paths", default=",".join(PATHS), help="of " + ", ".join(PATHS))
    args = parser.parse_args(argv)
    os.environ.update(LOCALHOST_ONLY)
    order = ["new"] if args.old is None else ["old", "new", "new", "old"]
    checkouts = {"new": PROJECT_ROOT, "old": args.old}
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="citylogin-worker-cpu-") as tmp, DynamoDBLocal() as db:
        env = app_environment(endpoint_url=db.endpoint_url, data_dir=Path(tmp) / "data")
        run_init(env)
        for _ in range(args.rounds):
            for side in order:
                with server(env, checkouts[side], Path(tmp) / f"{side}.log") as (pid, port):
                    for name in args.paths.split(","):
                        figure = measure(pid, port, PATHS[name], args.requests)
                        results.setdefault((side, name), []).append(figure)
                        print(f"{side:4} {name:10} {figure:.3f} ms", flush=True)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for (side, name), figures in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        print(f"{name:10} {side:4} " + " ".join(f"{figure:.3f}" for figure in figures)
              + f"  (median {sorted(figures)[len(figures) // 2]:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
