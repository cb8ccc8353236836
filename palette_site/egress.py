"""The egress policy: where tenants' endpoints may make the console connect.

Tenants type the addresses the console's workers connect to (kubeconfig
servers, store endpoints, etcd endpoints, a GCS ``token_uri``). Without a policy
those reach the console's own network: loopback services, private ranges, the
cloud metadata address. ``check_url`` / ``check_host`` resolve the host and
refuse when any address it resolves to is not a public one, unless the
server's ``PALETTE_EGRESS_ALLOW`` lists it (a CIDR, an address or a host name).

The refusal is one plain sentence, the same whether the address would answer
or not: it never says whether a port is open, closed or filtered.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Cloud metadata services: refused even when a private range is allowed,
# unless listed on their own.
METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
)
METADATA_NAMES = {"metadata.google.internal", "metadata", "instance-data"}


class EgressDenied(ValueError):
    """The endpoint may not be reached from the console; ``str()`` says so plainly."""

    reason = "egress"


@lru_cache(maxsize=8)
def _policy(entries: tuple[str, ...]) -> tuple[tuple, frozenset]:
    networks, names = [], set()
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if not entry.replace("-", "").replace(".", "").replace("_", "").isalnum():
                raise ImproperlyConfigured(
                    f"PALETTE_EGRESS_ALLOW entries are CIDRs, addresses or host names; "
                    f"got {entry!r}"
                ) from None
            names.add(entry.lower().rstrip("."))
    return tuple(networks), frozenset(names)


def allowed() -> tuple[tuple, frozenset]:
    """(networks, host names) the server allows although they are not public."""
    return _policy(tuple(getattr(settings, "PALETTE_EGRESS_ALLOW", ()) or ()))


def _is_public(address) -> bool:
    if any(address in net for net in METADATA):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return _is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def _refusal(what: str, host: str) -> EgressDenied:
    return EgressDenied(
        f"The {what} {host} is not allowed: the console does not connect to loopback, "
        "link-local, private or cloud-metadata addresses (an administrator can allow it "
        "with PALETTE_EGRESS_ALLOW)."
    )


def resolve(host: str, port: int | None = None) -> list:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    literal = host.strip("[]")
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(literal, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def check_host(host: str, port: int | None = None, *, what: str = "endpoint") -> None:
    """Raise EgressDenied unless every address of ``host`` is public or allowed.

    A name that does not resolve is let through: the connection then fails with
    the client's own "cannot resolve" message, which tells nothing about the
    console's network.
    """
    name = (host or "").strip("[]").lower().rstrip(".")
    if not name:
        return
    networks, names = allowed()
    if name in names:
        return
    if name in METADATA_NAMES:
        raise _refusal(what, host)
    for address in resolve(name, port):
        if not _allowed(address, networks):
            raise _refusal(what, host)


def _allowed(address, networks) -> bool:
    if _is_public(address):
        return True
    if any(address in net for net in METADATA):
        # Only an entry naming exactly this address opens a metadata service.
        return any(address in net and net.num_addresses == 1 for net in networks)
    return any(address in net for net in networks)


def check_url(url: str, *, what: str = "endpoint") -> None:
    """``check_host`` for the host of a URL (a bare ``host:port`` works too)."""
    if not url:
        return
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return  # not a URL: the caller's own validation says so
    if host:
        check_host(host, port, what=what)


# At connect time ------------------------------------------------------------------------
#
# The checks above run before a client is built; a name can resolve elsewhere by
# the time the client connects (DNS rebinding). ``guard`` makes a urllib3 pool
# manager check the address it is about to connect to, and connect to exactly
# that address (the host name still goes to TLS for SNI and verification).


def checked_address(host: str, port: int | None, *, what: str) -> str:
    """The address to connect to for ``host``: one that the policy allows."""
    name = (host or "").strip("[]").lower().rstrip(".")
    networks, names = allowed()
    if name in names:
        return host
    if name in METADATA_NAMES:
        raise _refusal(what, host)
    addresses = resolve(name, port)
    for address in addresses:
        if not _allowed(address, networks):
            raise _refusal(what, host)
    return str(addresses[0]) if addresses else host


@lru_cache(maxsize=32)
def _guarded_pool(pool_class, what: str):
    """``pool_class`` whose connections apply the policy to the address they dial."""

    class Connection(pool_class.ConnectionCls):
        def _new_conn(self):
            original = self._dns_host
            self._dns_host = checked_address(original, self.port, what=what)
            try:
                return super()._new_conn()
            finally:
                self._dns_host = original

    Connection.__name__ = f"Egress{pool_class.ConnectionCls.__name__}"
    return type(f"Egress{pool_class.__name__}", (pool_class,), {"ConnectionCls": Connection})


def guard(pool_manager, what: str = "endpoint"):
    """Make ``pool_manager`` (urllib3) apply the policy on every new connection,
    keeping the pool classes it had (an SDK's own included)."""
    pool_manager.pool_classes_by_scheme = {
        scheme: cls if cls.__name__.startswith("Egress") else _guarded_pool(cls, what)
        for scheme, cls in pool_manager.pool_classes_by_scheme.items()
    }
    pool_manager.clear()
    return pool_manager


def guard_session(session, what: str = "endpoint"):
    """The same for a requests Session (every mounted adapter)."""
    for adapter in session.adapters.values():
        if getattr(adapter, "poolmanager", None) is not None:
            guard(adapter.poolmanager, what)
    return session


def guard_botocore(client, what: str = "endpoint"):
    """The same for a boto3 client: its HTTP session's pool classes (shared, in
    botocore, by its pool manager and proxy managers) are swapped in place. Falls
    back to the checks made before the client was built if botocore changes."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    classes = getattr(session, "_pool_classes_by_scheme", None)
    if isinstance(classes, dict):
        for scheme, cls in list(classes.items()):
            if not cls.__name__.startswith("Egress"):
                classes[scheme] = _guarded_pool(cls, what)
        manager = getattr(session, "_manager", None)
        if manager is not None:
            manager.clear()
    return client
