"""Where `citylogin serve` runs, for the operator commands of any folder. While it serves on a DynamoDB Local,
`serve` keeps a record in the user's runtime directory (CITYLOGIN_RUNTIME_DIR, else $XDG_RUNTIME_DIR/citylogin,
else ~/.local/state/citylogin): its address, its DynamoDB endpoint, data directory and table prefix, its token
issuer, where its key-encryption key comes from, a fingerprint of these (the deployment they define), and its
process. It removes the record when it stops; a record whose process is gone (a serve that was killed) is
stale: ignored and removed by the next reader. Which service a command may use is citylogin.server.service_choice's.

A record tells a command which DynamoDB to open, so the folder is trusted as ssh and gpg trust theirs: it must
be the user's own and writable by no one else, or it is refused and nothing is read, written or started. Every
step works on the folder opened once and checked (a descriptor), so a path swapped after the check changes
nothing; a record is read only if it is a regular file of the user, opened without following a link, and
written under a name no one can guess, created exclusively, then renamed into place."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping

import click

from common.config import Settings

RECORD_PREFIX = "serve-"
RECORD_SUFFIX = ".json"
MAX_RECORD_BYTES = 64 * 1024  # a record is a few hundred bytes; more is not one


@dataclass(frozen=True)
class RunningService:
    """One `citylogin serve` as its record says."""

    pid: int
    started: str  # the process's start time as /proc tells it ("" elsewhere): a pid used again is not it
    url: str
    dynamodb_endpoint_url: str
    data_dir: str  # absolute
    table_prefix: str
    jwt_issuer: str
    key_encryption: str  # "data_dir" (a generated key in the data directory), "setting" or "kms"
    fingerprint: str  # deployment_fingerprint of the settings that define the deployment
    listen_url: str = ""  # where it listens, as it announced it when that is not `url` ("" in older records)

    def describe(self) -> str:
        return (f"{self.url} (pid {self.pid}, data in {self.data_dir}, "
                f"deployment {self.fingerprint[:FINGERPRINT_SHOWN]})")


FINGERPRINT_SHOWN = 12  # hex digits: enough to tell a host's few deployments apart at a glance


def deployment_fingerprint(*, url: str, dynamodb_endpoint_url: str, data_dir: str, table_prefix: str,
                           jwt_issuer: str, key_encryption: str) -> str:
    """A digest of the settings that make a deployment what it is: where its data and key are (the endpoint
    set, "" for the DynamoDB Local serve starts in the data directory, whose port changes at each start), the
    address its links and issuer carry, and the issuer of its tokens; started again, it keeps it. No secret
    goes in, only which kind of key-encryption key it uses; DynamoDB Local keeps one database for every
    region (-sharedDb), so the region is no part."""
    defining = {"url": url, "dynamodb_endpoint_url": dynamodb_endpoint_url, "data_dir": data_dir,
                "table_prefix": table_prefix, "jwt_issuer": jwt_issuer, "key_encryption": key_encryption}
    return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()


OWN = "a folder that you own and only you can write (mode 0700)"
NOTHING = "nothing was read, written or started"


class RuntimeFolderRefused(click.ClickException):
    """A runtime folder that is not the user's alone: one line that names it and says how to fix it."""


def folder_problem(folder: Path, mode: int, uid: int, euid: int) -> str | None:
    """Why `folder`, of this st_mode and owner, may not hold the records of user `euid`, and what to do (one
    line); None: it may. As ssh and gpg judge theirs: the user's own, writable by no one else."""
    if not stat.S_ISDIR(mode):
        return (f"the runtime folder {folder} is not a folder: remove it, or set CITYLOGIN_RUNTIME_DIR to {OWN}; "
                f"{NOTHING}")
    if uid != euid:
        return (f"the runtime folder {folder} belongs to uid {uid}, not to you (uid {euid}), so its owner could "
                f"plant a record of where citylogin runs: set CITYLOGIN_RUNTIME_DIR to {OWN}; {NOTHING}")
    writers = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if mode & bit]
    if writers:
        return (f"the runtime folder {folder} is writable by {' and '.join(writers)} (mode "
                f"{stat.S_IMODE(mode):04o}), so another user could plant a record of where citylogin runs: run "
                f"`chmod 700 {folder}`, or set CITYLOGIN_RUNTIME_DIR to {OWN}; {NOTHING}")
    return None


def record_problem(mode: int, uid: int, euid: int) -> str | None:
    """Why a file of this st_mode and owner is not a record of user `euid`; None: it is one."""
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    if uid != euid:
        return f"belongs to uid {uid}, not to you (uid {euid})"
    return None


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
def opened_folder(folder: Path, *, create: bool) -> Iterator[int]:
    """A descriptor of `folder`, checked to be the user's alone (RuntimeFolderRefused if not). `create`: made
    first where missing, mode 0700. OSError where it cannot be made or opened."""
    if create:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        found = os.fstat(fd)
        problem = folder_problem(folder, found.st_mode, found.st_uid, os.geteuid())
        if problem:
            raise RuntimeFolderRefused(problem)
        yield fd
    finally:
        os.close(fd)


def check_runtime_folder(settings: Settings) -> None:
    """Before `serve` starts anything: a runtime folder that is not the user's alone is refused. One that
    cannot be made is not: `recorded` says so, and serve goes on unfound by the commands of other folders."""
    try:
        with opened_folder(runtime_dir(settings), create=True):
            pass
    except OSError:
        pass


@contextmanager
def recorded(settings: Settings, *, url: str, dynamodb_endpoint_url: str,
             listen_url: str = "") -> Iterator[RunningService]:
    """The record of this process serving, for as long as the block runs (written whole, mode 0600).
    RuntimeFolderRefused if the folder is not the user's alone."""
    pid = os.getpid()
    data_dir, key_encryption = str(settings.data_dir.resolve()), key_encryption_of(settings)
    fingerprint = deployment_fingerprint(url=url, dynamodb_endpoint_url=settings.dynamodb_endpoint_url or "",
                                         data_dir=data_dir, table_prefix=settings.table_prefix,
                                         jwt_issuer=settings.jwt_issuer, key_encryption=key_encryption)
    service = RunningService(pid=pid, started=_started(pid), url=url, dynamodb_endpoint_url=dynamodb_endpoint_url,
                             data_dir=data_dir, table_prefix=settings.table_prefix, jwt_issuer=settings.jwt_issuer,
                             key_encryption=key_encryption, fingerprint=fingerprint, listen_url=listen_url)
    folder, name = runtime_dir(settings), f"{RECORD_PREFIX}{pid}{RECORD_SUFFIX}"
    with ExitStack() as stack:
        fd = _written(stack, folder, name, json.dumps(asdict(service)).encode())
        try:
            yield service
        finally:
            if fd is not None:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)


def _written(stack: ExitStack, folder: Path, name: str, content: bytes) -> int | None:
    """The folder's descriptor (held by `stack`) once `content` is its record `name`; None where it could not be."""
    try:
        fd = stack.enter_context(opened_folder(folder, create=True))
        _write_new(fd, name, content)
    except OSError as exc:  # serving matters more than being found: say so, and serve
        click.echo(f"could not record where citylogin runs in {folder} ({exc.strerror or exc}): the commands of "
                   "other folders will not find this citylogin", err=True)
        return None
    return fd


def _write_new(fd: int, name: str, content: bytes) -> None:
    """`content` as `name` in the folder `fd`, whole or not at all: written under a name no one can guess,
    created (a link or file planted under it fails the creation, never redirects it), renamed over `name`
    (a link there is replaced, not followed)."""
    partial = f".{name}.{secrets.token_hex(8)}.tmp"
    try:
        out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=fd)
        with os.fdopen(out, "wb") as handle:
            handle.write(content)
        os.replace(partial, name, src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        with suppress(FileNotFoundError):  # gone once renamed
            os.unlink(partial, dir_fd=fd)


def running(settings: Settings) -> list[RunningService]:
    """The services whose records name a live process, oldest record first; stale records are removed. A
    file under a record's name that is not the user's own regular file is ignored, with a line on stderr
    saying why. RuntimeFolderRefused if the folder is not the user's alone."""
    folder = runtime_dir(settings)
    with ExitStack() as stack:
        try:
            fd = stack.enter_context(opened_folder(folder, create=False))
        except FileNotFoundError:
            return []  # no serve has recorded itself here
        except OSError as exc:  # as serve goes on when it cannot write there: say so, and go on
            click.echo(f"could not read the runtime folder {folder} ({exc.strerror or exc}): a citylogin serve "
                       "of another folder cannot be found", err=True)
            return []
        found = []
        for _, name, service in sorted(_records(folder, fd), key=lambda record: record[0]):
            if _alive(service):
                found.append(service)
            else:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
        return found


def _records(folder: Path, fd: int) -> Iterator[tuple[float, str, RunningService]]:
    """(modification time, name, service) of each record in the folder `fd`."""
    for name in os.listdir(fd):
        if not (name.startswith(RECORD_PREFIX) and name.endswith(RECORD_SUFFIX)):
            continue  # a record being written (a hidden name), or not one
        try:
            modified, text = _read_own(fd, name)
        except FileNotFoundError:
            continue  # removed since it was listed
        except _NotARecord as refused:
            click.echo(f"ignored {folder / name}: it {refused}; remove it", err=True)
            continue
        try:
            service = RunningService(**json.loads(text))
        except (ValueError, TypeError):
            continue  # not a record of this version: not ours to judge
        yield modified, name, service


class _NotARecord(Exception):
    """A file under a record's name that must not be read as one; its text says why."""


def _read_own(fd: int, name: str) -> tuple[float, bytes]:
    """(st_mtime, content) of the record `name`, opened without following a link and judged on the open file.
    O_NONBLOCK: a fifo under that name answers at once, and is then refused as not a regular file."""
    try:
        record = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _NotARecord("is a symbolic link" if exc.errno == errno.ELOOP else
                          f"cannot be read ({exc.strerror})") from None
    with os.fdopen(record, "rb") as handle:
        found = os.fstat(record)
        problem = record_problem(found.st_mode, found.st_uid, os.geteuid())
        if problem:
            raise _NotARecord(problem)
        return found.st_mtime, handle.read(MAX_RECORD_BYTES)


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
        line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return line.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name
