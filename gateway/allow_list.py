"""Which network addresses may connect to a listener: IPv4/IPv6 addresses and CIDR networks (RFC 4632, RFC 4291 2.3).

`PULSEBRIDGE_MLLP_ALLOW=10.1.0.0/16,192.168.5.20,fd00::/8`. Unset means "any sender that can reach
the bind address", which is only safe on a loopback bind: a listener bound elsewhere with no list
refuses to start (see `require_for_bind`), so exposing MLLP is always a deliberate choice.
`0.0.0.0/0,::/0` admits everyone explicitly.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class AllowList:
    """A set of networks; empty means the list was not configured."""

    networks: tuple[Network, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __str__(self) -> str:
        return ",".join(str(network) for network in self.networks)

    def permits(self, host: str) -> bool:
        """True when `host` (a peer address as the socket reports it) lies in one of the networks, or no list is set."""
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id (fe80::1%eth0)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 on a dual-stack socket is the IPv4 sender
        return any(address in network for network in self.networks if network.version == address.version)


def parse_allow_list(text: str) -> AllowList:
    """Comma- or space-separated addresses and CIDR networks; a host address without a prefix is a /32 or /128."""
    networks: list[Network] = []
    for item in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8, 192.168.1.20, fd00::/8)") from None
    return AllowList(tuple(networks))


def is_loopback_bind(host: str) -> bool:
    """True when a listener bound to `host` can only be reached from this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_for_bind(host: str, allow: AllowList, *, option: str) -> None:
    """Refuse (ValueError) a non-loopback bind with no allow-list: DESIGN.md, secure by default."""
    if not allow and not is_loopback_bind(host):
        raise ValueError(
            f"{host or '*'} is reachable from other machines: set {option} to the senders' addresses or networks "
            "(e.g. 10.20.0.0/16,192.168.1.7), or 0.0.0.0/0,::/0 to admit any sender"
        )
