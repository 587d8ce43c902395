"""Where `citylogin serve` runs, for the operator commands of any folder. While it serves on a DynamoDB Local,
`serve` keeps a record in the user's runtime directory (CITYLOGIN_RUNTIME_DIR, else $XDG_RUNTIME_DIR/citylogin,
else ~/.local/state/citylogin): its address, its DynamoDB endpoint, data directory and table prefix, where its
key-encryption key comes from, and its process. It removes the record when it stops; a record whose process
is gone (a serve that was killed) is stale: ignored and removed by the next reader."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping

import click

from common.config import Settings

RECORD_PREFIX = "serve-"


@dataclass(frozen=True)
class RunningService:
    """One `citylogin serve` as its record says."""

    pid: int
    started: str  # the process's start time as /proc tells it ("" elsewhere): a pid used again is not it
    url: str
    dynamodb_endpoint_url: str
    data_dir: str  # absolute
    table_prefix: str
    key_encryption: str  # "data_dir" (a generated key in the data directory), "setting" or "kms"

    def describe(self) -> str:
        return f"{self.url} (pid {self.pid}, data in {self.data_dir})"


def runtime_dir(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The folder of the records: per user, never a project's."""
    if settings.runtime_dir is not None:
        return settings.runtime_dir
    environ = os.environ if environ is None else environ
    if environ.get("XDG_RUNTIME_DIR"):
        return Path(environ["XDG_RUNTIME_DIR"]) / "citylogin"
    state = Path(environ["XDG_STATE_HOME"]) if environ.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return state / "citylogin"


def key_encryption_of(settings: Settings) -> str:
    return "kms" if settings.kms_key_id else "setting" if settings.key_encryption_key is not None else "data_dir"


@contextmanager
def recorded(settings: Settings, *, url: str, dynamodb_endpoint_url: str) -> Iterator[RunningService]:
    """The record of this process serving, for as long as the block runs (written whole, mode 0600)."""
    pid = os.getpid()
    service = RunningService(pid=pid, started=_started(pid), url=url, dynamodb_endpoint_url=dynamodb_endpoint_url,
                             data_dir=str(settings.data_dir.resolve()), table_prefix=settings.table_prefix,
                             key_encryption=key_encryption_of(settings))
    folder = runtime_dir(settings)
    path, partial = folder / f"{RECORD_PREFIX}{pid}.json", folder / f".{RECORD_PREFIX}{pid}.json.tmp"
    written = False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(service), handle)
        partial.replace(path)
        written = True
    except OSError as exc:  # serving matters more than being found: say so, and serve
        click.echo(f"could not record where citylogin runs in {folder} ({exc.strerror or exc}): commands of "
                   "other folders will not find it; set CITYLOGIN_RUNTIME_DIR to a folder of yours", err=True)
    try:
        yield service
    finally:
        if written:
            path.unlink(missing_ok=True)


def running(settings: Settings) -> list[RunningService]:
    """The services whose records name a live process, oldest record first; stale records are removed."""
    folder = runtime_dir(settings)
    found = []
    for path in sorted(folder.glob(f"{RECORD_PREFIX}*.json"), key=_age) if folder.is_dir() else []:
        try:
            service = RunningService(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue  # being written, or not a record of this version: not ours to judge
        if _alive(service):
            found.append(service)
        else:
            path.unlink(missing_ok=True)
    return found


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _alive(service: RunningService) -> bool:
    try:
        os.kill(service.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user holds the pid now
        return False
    return service.started == _started(service.pid)


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux's /proc), "" where there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name
