"""Debian's Apache (apache2) as a child process in the foreground (-X -DFOREGROUND), with its own
generated configuration, documents and runtime files in a temporary directory: not the system service,
no files of /etc/apache2. The modules it loads are named one by one from /usr/lib/apache2/modules."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.waiting import stop, until_listening

APACHE = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
MOD_AUTH_OPENIDC = MODULES / "mod_auth_openidc.so"
# The modules the relying-party tests use: an MPM, authentication (AuthType) and authorization, the
# files and index of a folder, server-side includes (the page that shows the user), mod_auth_openidc.
LOADED = {"mpm_event_module": "mod_mpm_event.so", "authn_core_module": "mod_authn_core.so",
          "authz_core_module": "mod_authz_core.so", "authz_user_module": "mod_authz_user.so",
          "mime_module": "mod_mime.so", "dir_module": "mod_dir.so", "include_module": "mod_include.so",
          "auth_openidc_module": "mod_auth_openidc.so"}

_MAIN_CONF = """\
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
{user}PidFile {prefix}/apache2.pid
DefaultRuntimeDir {prefix}
Mutex file:{prefix} default
ErrorLog {prefix}/error.log
LogLevel warn auth_openidc:info
{modules}
TypesConfig /etc/mime.types
DocumentRoot {prefix}/htdocs
DirectoryIndex index.html index.shtml
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
<Directory {prefix}/htdocs>
    Options +Includes
</Directory>
"""


def require_mod_auth_openidc() -> None:
    """Skip a test without Apache and mod_auth_openidc locally; in CI (CI set) their absence is a failure."""
    if os.path.exists(APACHE) and MOD_AUTH_OPENIDC.exists():
        return
    message = (f"{APACHE} or {MOD_AUTH_OPENIDC} is missing: bash scripts/setup.sh --browser installs Debian's "
               "apache2 and libapache2-mod-auth-openidc")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def running_apache(*, port: int, site_conf: str, documents: dict[str, str],
                   timeout: float = 60.0) -> Iterator[Path]:
    """Apache on 127.0.0.1:`port` with `site_conf` (server-context directives) after the main configuration,
    and `documents` (path under the document root -> text); yields its prefix (error.log is there).
    As root its process serves as www-data, so its prefix is a world-readable directory of its own."""
    prefix = Path(tempfile.mkdtemp(prefix="citylogin-apache-"))
    try:
        prefix.chmod(0o755)
        for name, text in documents.items():
            (prefix / "htdocs" / name).parent.mkdir(parents=True, exist_ok=True)
            (prefix / "htdocs" / name).write_text(text)
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 and _has_user("www-data") else ""
        modules = "\n".join(f"LoadModule {name} {MODULES / file}" for name, file in LOADED.items())
        (prefix / "apache2.conf").write_text(
            _MAIN_CONF.format(port=port, prefix=prefix, user=user, modules=modules) + site_conf)
        with _serving(prefix, port, timeout):
            yield prefix
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@contextmanager
def _serving(prefix: Path, port: int, timeout: float) -> Iterator[None]:
    log_path = prefix / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [APACHE, "-d", str(prefix), "-f", str(prefix / "apache2.conf"), "-X", "-DFOREGROUND"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        until_listening(process, port, timeout=timeout, name="apache2", output=lambda: _logs(prefix))
        yield
    finally:
        stop(process)


def _logs(prefix: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in (prefix / "stderr.log", prefix / "error.log")
                     if path.exists())


def error_log(prefix: Path) -> str:
    return _logs(prefix)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
