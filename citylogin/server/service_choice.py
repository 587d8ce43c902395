"""Which running `citylogin serve` an operator command acts on: only the one its settings or folder point to
(the same data directory, or the same DynamoDB Local endpoint and table prefix), or the one the operator names
with `--service URL|PID`. Every deployment-defining setting the command sets itself must agree with that
service's record. Anything else is refused with one line that lists the services running and how to choose
one, before anything is read from or written to a DynamoDB, or started: on a host where staging and
production both run, a command never acts on the other one by chance."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from citylogin.server.running_services import NOTHING, RunningService, key_encryption_of
from common.config import Settings, env_name, is_local_dynamodb
from common.url_parts import authority_is_parsed

SERVICE_HELP = ("The running `citylogin serve` to act on, by its address or its pid, as a refusal lists them "
                "(default: the one of this folder's data directory or of CITYLOGIN_DATA_DIR).")
HOW_TO_CHOOSE = ("name one with --service URL or --service PID, run the command in its folder, or set "
                 "CITYLOGIN_DATA_DIR to its data directory")
_META = "citylogin.service"  # where the option's value waits in click's context, shared by group and command
_KEY_SETTINGS = {"setting": "key_encryption_key", "kms": "kms_key_id"}
_KEY_WORDS = {"data_dir": "the generated key of its data directory", "setting": "CITYLOGIN_KEY_ENCRYPTION_KEY",
              "kms": "CITYLOGIN_KMS_KEY_ID"}


Address = tuple[str, str, int, str]  # (scheme, host, port, path)


@dataclass(frozen=True)
class ServiceName:
    """What `--service` was given: a pid, or an address as service_address gives it."""

    given: str
    pid: int | None = None
    address: Address | None = None

    def names(self, service: RunningService) -> bool:
        if self.pid is not None:
            return service.pid == self.pid
        return self.address is not None and self.address in addresses_of(service)


LOOPBACK = "loopback"  # localhost and every loopback address: one host, this machine's


def address_of(url: str | None) -> Address | None:
    """(scheme, host, port, path) of an http(s) address, the port filled in and the path without its
    trailing slash; None for anything else, an address with a user, query or fragment included."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or not authority_is_parsed(parts):  # a user, or anything else around the host and port
        return None
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), parts.path.rstrip("/")


def service_address(url: str | None) -> Address | None:
    """address_of, its host compared as what it reaches: an IP address by its value (::ffff:127.0.0.1 is
    127.0.0.1), a name without its final dot, and localhost and every loopback address one LOOPBACK, so that
    `--service http://127.0.0.1:PORT` names the serve that announced http://localhost:PORT."""
    address = address_of(url)
    if address is None:
        return None
    scheme, host, port, path = address
    return scheme, _host_reached(host), port, path


def _host_reached(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.removesuffix(".")  # the root: one final dot, never more
        return LOOPBACK if name == "localhost" else name
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    ip = mapped or ip
    return LOOPBACK if ip.is_loopback else ip.compressed


def addresses_of(service: RunningService) -> set[Address]:
    """Every address that names `service`: the one it announced (its links'), the one it listens on, and where
    that is every address of the machine (0.0.0.0, ::), the loopback at its port."""
    found = {a for a in (service_address(service.url), service_address(service.listen_url)) if a is not None}
    listening = address_of(service.listen_url)
    if listening is not None and _is_unspecified(listening[1]):
        found.add((listening[0], LOOPBACK, listening[2], listening[3]))
    return found


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def service_name(value: str) -> ServiceName:
    """`--service`'s value: a pid (ASCII digits alone) or a service's address. ValueError: neither."""
    if value.isascii() and value.isdigit():
        return ServiceName(given=value, pid=int(value))
    address = service_address(value)
    if address is None:
        raise ValueError("give the address of a running citylogin serve (http://host:port, as a refusal lists "
                         "it) or its pid")
    return ServiceName(given=value, address=address)


def _remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    try:
        named = service_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    earlier = ctx.meta.get(_META)
    if earlier is not None and earlier != named:
        raise click.BadParameter(f"names another service than --service {earlier.given} before it")
    ctx.meta[_META] = named


def service_option() -> click.Option:
    """`--service`, which every operator group and command takes (citylogin.cli.output)."""
    return click.Option(["--service"], metavar="URL|PID", default=None, expose_value=False, callback=_remember,
                        help=SERVICE_HELP)


def named_service() -> ServiceName | None:
    """The service named with `--service` in the command running, None when none is."""
    context = click.get_current_context(silent=True)
    return context.meta.get(_META) if context is not None else None


def records_apply(settings: Settings, named: ServiceName | None) -> bool:
    """Whether a command with these settings looks for a running service at all: serve records itself only
    on a DynamoDB Local, so against Amazon DynamoDB (an endpoint elsewhere, or a KMS key) none is involved
    unless named."""
    if named is not None:
        return True
    if settings.dynamodb_endpoint_url:
        return is_local_dynamodb(settings.dynamodb_endpoint_url, settings.dynamodb_local)
    return not settings.kms_key_id


class ServiceRefused(click.ClickException):
    """No running service is the command's, or the one that is disagrees with its settings: one line."""


def chosen_service(settings: Settings, services: list[RunningService], named: ServiceName | None, *,
                   may_create: bool = False) -> RunningService | None:
    """The running service the command acts on, None: none is its (then its own data, or the DynamoDB its
    settings name). ServiceRefused where it cannot tell, or where its settings disagree with the service's."""
    service: RunningService | None
    if named is not None:
        service = _named(named, services)
    elif settings.dynamodb_endpoint_url:
        service = _on_endpoint(settings, services)
    else:
        service = _of_folder(settings, services, may_create=may_create)
    if service is not None:
        _refuse_disagreement(settings, service)
    return service


def listing(services: list[RunningService]) -> str:
    return "; ".join(service.describe() for service in services)


def _named(named: ServiceName, services: list[RunningService]) -> RunningService:
    found = [service for service in services if named.names(service)]
    if len(found) == 1:
        return found[0]
    if found:
        raise ServiceRefused(f"{len(found)} citylogin services run as {named.given} (--service): {listing(found)}. "
                             f"Name one by its pid; {NOTHING}")
    running = (f"those that run: {listing(services)}. Name one by its address or pid as listed" if services
               else "none runs for this user")
    raise ServiceRefused(f"no citylogin serve runs as {named.given} (--service); {running}; {NOTHING}")


def _on_endpoint(settings: Settings, services: list[RunningService]) -> RunningService | None:
    """The service on the endpoint and table prefix set, that of the command's data directory first."""
    endpoint = address_of(settings.dynamodb_endpoint_url)
    same = [s for s in services if endpoint is not None and address_of(s.dynamodb_endpoint_url) == endpoint
            and s.table_prefix == settings.table_prefix]
    data_dir = str(settings.data_dir.resolve())
    return next((s for s in same if s.data_dir == data_dir), same[0] if same else None)


def _of_folder(settings: Settings, services: list[RunningService], *, may_create: bool) -> RunningService | None:
    """The service of the data directory; None where none is and the command may act on its own (data there,
    CITYLOGIN_DATA_DIR named, or no service running to be mistaken for it)."""
    from common.database.dynamodb_local import DATA_FILE, ENDPOINT_FILE

    data_dir = settings.data_dir.resolve()
    mine = [service for service in services if Path(service.data_dir) == data_dir]
    if mine:
        return mine[0]
    own_data = any((data_dir / "dynamodb" / name).exists() for name in (DATA_FILE, ENDPOINT_FILE))
    if not services or own_data or "data_dir" in settings.model_fields_set:
        return None
    count = f"{len(services)} run" if len(services) > 1 else "one runs"
    new_one = f" (a new citylogin here: set CITYLOGIN_DATA_DIR={data_dir})" if may_create else ""
    raise ServiceRefused(f"no running citylogin is the one of this folder (its data directory {data_dir} holds no "
                         f"citylogin), and {count} elsewhere: {listing(services)}. To act on one, {HOW_TO_CHOOSE}"
                         f"{new_one}; {NOTHING}")


def _refuse_disagreement(settings: Settings, service: RunningService) -> None:
    """A service the command found, refused where a deployment-defining setting of the command's own shell
    (one it sets, not a default) names another deployment: each named, with the two values unless secret."""
    needed = _KEY_SETTINGS.get(service.key_encryption)
    if needed and key_encryption_of(settings) != service.key_encryption:
        raise ServiceRefused(f"the citylogin running at {service.describe()} seals its key ring under "
                             f"{env_name(needed)}: set it in this shell too")
    differing = _differing(settings, service)
    if differing:
        raise ServiceRefused(f"the citylogin running at {service.describe()} is another deployment than this "
                             f"shell's settings name: {'; '.join(differing)}. Unset them, or set them to that "
                             f"deployment's; {NOTHING}")


def _differing(settings: Settings, service: RunningService) -> list[str]:
    """`SETTING is X here, Y there` for each deployment-defining setting set here that differs."""
    pairs = [("data_dir", str(settings.data_dir.resolve()), service.data_dir),
             ("dynamodb_endpoint_url", settings.dynamodb_endpoint_url, service.dynamodb_endpoint_url),
             ("table_prefix", settings.table_prefix, service.table_prefix),
             ("public_url", settings.public_url, service.url),
             ("jwt_issuer", settings.jwt_issuer, service.jwt_issuer)]
    if settings.dynamodb_endpoint_url and service.key_encryption != "data_dir":
        pairs = pairs[1:]  # on an endpoint each host has a data directory of its own: only a key kept there ties them
    found = [f"{env_name(name)} is {here!r} here, {there!r} there" for name, here, there in pairs
             if name in settings.model_fields_set and not _same(name, here, there)]
    mine = key_encryption_of(settings)
    if mine not in (service.key_encryption, "data_dir"):  # a key set here that the service does not seal with
        found.append(f"{_KEY_WORDS[mine]} is set here, and it seals its key ring with "
                     f"{_KEY_WORDS[service.key_encryption]}")
    return found


def _same(name: str, here: str | None, there: str) -> bool:
    if name in ("dynamodb_endpoint_url", "public_url"):  # addresses: compared parsed, a default port as given
        return address_of(here) is not None and address_of(here) == address_of(there)
    return here == there
