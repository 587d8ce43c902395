"""`citylogin crl-sync`: keep the file nginx's `ssl_crl` names in step with GET /device/crl.pem
(SPEC §4) and reload nginx when it changed. nginx reads that file only at start and reload, and
once the loaded CRL's nextUpdate has passed it verifies no client certificate at all, so a CRL is
installed only after it is checked, and a refused one is logged and never written."""
from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, mldsa, rsa
from cryptography.hazmat.primitives.serialization import Encoding

log = logging.getLogger("citylogin.cli.crl_sync")

CRL_PATH, CA_PATH = "/device/crl.pem", "/device/ca.pem"
MAX_CRL_BYTES = 16 * 1024 * 1024
# The keys that sign (CertificateIssuerPublicKeyTypes): a CA's key of another type verifies no CRL.
ISSUER_KEY_TYPES = (dsa.DSAPublicKey, rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey,
                    ed448.Ed448PublicKey, mldsa.MLDSA44PublicKey, mldsa.MLDSA65PublicKey, mldsa.MLDSA87PublicKey)
RELOAD_TIMEOUT = 30  # seconds


class CRLRefused(Exception):
    """The fetched CRL must not be installed; the message says why (never the CRL itself)."""


@dataclass(frozen=True)
class SyncConfig:
    service_url: str  # the service's base URL
    crl_file: Path
    ca_file: Path | None = None  # else GET <service_url>/device/ca.pem
    reload_cmd: str = "nginx -s reload"  # "" for none
    timeout: float = 10.0


@dataclass
class SyncState:
    reload_pending: bool = False  # a CRL was written but the reload failed: retry it


# --- checking ------------------------------------------------------------------------------

def validate_crl(pem: bytes, ca: x509.Certificate, *, now: datetime) -> x509.CertificateRevocationList:
    """The CRL, if it is one, issued and signed by `ca`, and current; else CRLRefused."""
    try:
        crl = x509.load_pem_x509_crl(pem)
    except ValueError:
        raise CRLRefused("not a PEM CRL") from None
    if crl.issuer != ca.subject:
        raise CRLRefused("issued by another name than the CA's")
    ca_key = ca.public_key()
    if not isinstance(ca_key, ISSUER_KEY_TYPES) or not crl.is_signature_valid(ca_key):
        raise CRLRefused("its signature does not verify against the CA")
    if crl.next_update_utc is None or crl.next_update_utc <= now:
        raise CRLRefused(f"expired (nextUpdate {crl.next_update_utc})")
    if crl.last_update_utc > now:  # OpenSSL: "CRL is not yet valid", and nginx would verify nothing
        raise CRLRefused(f"not yet valid (lastUpdate {crl.last_update_utc}); check the clocks")
    return crl


def needs_install(new: x509.CertificateRevocationList, installed: x509.CertificateRevocationList | None, *,
                  now: datetime) -> bool:
    """Whether `new` should replace `installed`. The service rebuilds its CRL every minute with new
    times, so bytes always differ; a reload is due only when the list changed or the installed CRL
    is past half its validity (every reload parks old workers with their open event streams). Both
    CRLs are ones validate_crl passed."""
    if installed is None or installed.issuer != new.issuer:
        return True
    # validate_crl refuses a CRL without nextUpdate, so both have one.
    assert new.next_update_utc is not None and installed.next_update_utc is not None
    if _crl_number(new) < _crl_number(installed):
        return False  # an older build, e.g. from another process's cache
    if _serials(new) != _serials(installed):
        return True
    halfway = installed.last_update_utc + (installed.next_update_utc - installed.last_update_utc) / 2
    return now >= halfway and new.next_update_utc > installed.next_update_utc


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


def _serials(crl: x509.CertificateRevocationList) -> set[int]:
    return {entry.serial_number for entry in crl}


def read_installed(path: Path, ca: x509.Certificate, *, now: datetime) -> x509.CertificateRevocationList | None:
    """The CRL in `path` if it is still a valid one, else None (then anything valid replaces it)."""
    try:
        return validate_crl(path.read_bytes(), ca, now=now)
    except (OSError, CRLRefused):
        return None


# --- fetching, writing, reloading ----------------------------------------------------------

def fetch(url: str, *, timeout: float) -> bytes:
    response = requests.get(url, timeout=timeout, headers={"Cache-Control": "no-cache"})
    response.raise_for_status()
    if len(response.content) > MAX_CRL_BYTES:
        raise CRLRefused(f"larger than {MAX_CRL_BYTES} bytes")
    return response.content


def load_ca(config: SyncConfig) -> x509.Certificate:
    pem = config.ca_file.read_bytes() if config.ca_file else \
        fetch(config.service_url + CA_PATH, timeout=config.timeout)
    return x509.load_pem_x509_certificate(pem)


def write_atomically(path: Path, content: bytes) -> None:
    """Readers (nginx) see the old file or the new one, never a part: temp file + rename."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)  # public data; mkstemp makes it 0600 and nginx's master may not be us
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def run_reload(command: str) -> bool:
    if not command:
        return True
    try:
        done = subprocess.run(shlex.split(command), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=RELOAD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("reload command failed: %s", type(exc).__name__)
        return False
    if done.returncode != 0:
        last_line = (done.stderr.decode(errors="replace").strip().splitlines() or [""])[-1][:300]
        log.error("reload command exited %d: %s", done.returncode, last_line)
        return False
    return True


# --- one round and the loop ----------------------------------------------------------------

def sync_once(config: SyncConfig, state: SyncState | None = None) -> bool:
    """Fetch, check, install if changed, reload. True when a valid CRL is in place and loaded."""
    state = state or SyncState()
    now = datetime.now(timezone.utc)
    try:
        ca = load_ca(config)
        crl = validate_crl(fetch(config.service_url + CRL_PATH, timeout=config.timeout), ca, now=now)
    except (requests.RequestException, ValueError, OSError, CRLRefused) as exc:
        _log_refusal(config, exc, now=now)
        return False
    installed = read_installed(config.crl_file, ca, now=now)
    if needs_install(crl, installed, now=now):
        try:
            write_atomically(config.crl_file, crl.public_bytes(Encoding.PEM))
        except OSError as exc:
            log.error("could not write %s: %s", config.crl_file, exc.strerror or type(exc).__name__)
            return False
        log.info("installed a CRL of %d entries, nextUpdate %s", len(_serials(crl)), crl.next_update_utc)
        state.reload_pending = True
    if state.reload_pending:
        state.reload_pending = not run_reload(config.reload_cmd)
    return not state.reload_pending


def _log_refusal(config: SyncConfig, exc: Exception, *, now: datetime) -> None:
    reason = str(exc) if isinstance(exc, CRLRefused) else type(exc).__name__
    try:
        next_update = x509.load_pem_x509_crl(config.crl_file.read_bytes()).next_update_utc
    except (OSError, ValueError):
        next_update = None
    if next_update is None:
        installed = "no valid CRL is installed"
    else:
        installed = f"the installed CRL stays, valid {next_update - now} more"
    log.error("CRL from %s not installed (%s); %s", _without_credentials(config.service_url), reason, installed)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname or "")) if parts.password or parts.username else url


def run_forever(config: SyncConfig, *, interval: float) -> None:
    state = SyncState()
    while True:
        started = time.monotonic()
        sync_once(config, state)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


@click.command("crl-sync")
@click.option("--url", "service_url", required=True, help="The service's base URL (GET <url>/device/crl.pem).")
@click.option("--out", "crl_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file nginx's ssl_crl names.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The CA the CRL must be signed by, i.e. nginx's ssl_client_certificate "
                   "(default: GET <url>/device/ca.pem).")
@click.option("--interval", default=30.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds between fetches.")
@click.option("--reload-cmd", default="nginx -s reload", show_default=True,
              help="Run after a new CRL was written; '' for none.")
@click.option("--once", is_flag=True,
              help="One round; exit 1 unless a valid CRL is in place (e.g. before nginx starts).")
def crl_sync(service_url: str, crl_file: Path, ca_file: Path | None, interval: float, reload_cmd: str,
             once: bool) -> None:
    """Keep nginx's CRL file current: fetch, verify against the CA, write if changed, reload nginx."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s crl-sync %(levelname)s %(message)s")
    config = SyncConfig(service_url=service_url.rstrip("/"), crl_file=crl_file, ca_file=ca_file,
                        reload_cmd=reload_cmd)
    if once:
        sys.exit(0 if sync_once(config) else 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_forever(config, interval=interval)
    except KeyboardInterrupt:
        pass
