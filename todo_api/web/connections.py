"""Which connections a server process holds, by client address, and which to give up when full.

A connection that has sent nothing yet costs its holder nothing to keep and tells the server
nothing about who wants an answer: when a bound is reached, such connections are closed,
oldest first, before a newcomer is refused. One address holds at most `per_address`
connections (a trusted proxy's address excepted: it speaks for many clients), and the whole
process at most `max_connections`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from typing import Generic, TypeVar

Conn = TypeVar("Conn", bound=Hashable)


def address_key(host: str) -> str:
    """Whom a connection is counted against: its IPv4 address, or its IPv6 address's /64 (one
    host is usually given a whole /64, and could rotate through it)."""
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class ConnectionTable(Generic[Conn]):
    def __init__(self, max_connections: int, per_address: int) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        # Insertion-ordered: the first of each is the oldest.
        self._by_address: dict[str, dict[Conn, None]] = {}
        self._silent: dict[str, dict[Conn, None]] = {}
        self._address_of: dict[Conn, str] = {}

    def __len__(self) -> int:
        return len(self._address_of)

    def admit(self, conn: Conn, address: str, *, capped: bool = True) -> list[Conn] | None:
        """Register a new connection from `address`: the silent connections to close to make
        room for it (forgotten here already), or None when it must be refused instead."""
        victim: Conn | None = None
        if capped and len(self._by_address.get(address, ())) >= self.per_address:
            victim = _oldest(self._silent.get(address))
            if victim is None:
                return None
        elif len(self._address_of) >= self.max_connections:
            victim = self._oldest_silent_of_the_busiest()
            if victim is None:
                return None
        if victim is not None:
            self.leave(victim)
        self._address_of[conn] = address
        self._by_address.setdefault(address, {})[conn] = None
        self._silent.setdefault(address, {})[conn] = None
        return [] if victim is None else [victim]

    def heard(self, conn: Conn) -> None:
        """The connection sent its first bytes."""
        address = self._address_of.get(conn)
        if address is not None:
            _discard(self._silent, address, conn)

    def leave(self, conn: Conn) -> None:
        address = self._address_of.pop(conn, None)
        if address is not None:
            _discard(self._by_address, address, conn)
            _discard(self._silent, address, conn)

    def _oldest_silent_of_the_busiest(self) -> Conn | None:
        """The oldest silent connection of the address that holds the most connections and
        has a silent one."""
        candidates = [address for address, silent in self._silent.items() if silent]
        if not candidates:
            return None
        busiest = max(candidates, key=lambda address: len(self._by_address[address]))
        return _oldest(self._silent[busiest])


def _oldest(conns: dict[Conn, None] | None) -> Conn | None:
    return next(iter(conns), None) if conns else None


def _discard(table: dict[str, dict[Conn, None]], address: str, conn: Conn) -> None:
    conns = table.get(address)
    if conns is not None:
        conns.pop(conn, None)
        if not conns:
            del table[address]
