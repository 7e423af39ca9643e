"""Which connections a full server gives up: silent ones, oldest first, before refusing."""

from __future__ import annotations

import pytest

from todo_api.web.connections import ConnectionTable, address_key


def test_past_the_per_address_bound_the_addresss_oldest_silent_connection_makes_room() -> None:
    table = ConnectionTable[str](max_connections=100, per_address=2)
    assert table.admit("a1", "A") == []
    assert table.admit("a2", "A") == []
    assert table.admit("a3", "A") == ["a1"]
    assert len(table) == 2


def test_past_the_per_address_bound_with_none_silent_the_newcomer_is_refused() -> None:
    table = ConnectionTable[str](max_connections=100, per_address=2)
    for conn in ("a1", "a2"):
        table.admit(conn, "A")
        table.heard(conn)
    assert table.admit("a3", "A") is None
    assert table.admit("b1", "B") == []  # another address is not held to A's bound


def test_an_uncapped_address_is_held_only_to_the_process_bound() -> None:
    table = ConnectionTable[str](max_connections=3, per_address=1)
    assert table.admit("p1", "proxy", capped=False) == []
    assert table.admit("p2", "proxy", capped=False) == []
    table.heard("p1")
    table.heard("p2")
    assert table.admit("p3", "proxy", capped=False) == []
    table.heard("p3")
    assert table.admit("p4", "proxy", capped=False) is None


def test_when_the_process_is_full_the_busiest_addresss_oldest_silent_one_goes() -> None:
    table = ConnectionTable[str](max_connections=4, per_address=10)
    table.admit("a1", "A")
    table.admit("b1", "B")
    table.admit("b2", "B")
    table.admit("b3", "B")
    table.heard("b1")
    assert table.admit("c1", "C") == ["b2"]
    assert len(table) == 4


def test_when_the_process_is_full_of_connections_that_asked_the_newcomer_is_refused() -> None:
    table = ConnectionTable[str](max_connections=2, per_address=10)
    for conn, address in (("a1", "A"), ("b1", "B")):
        table.admit(conn, address)
        table.heard(conn)
    assert table.admit("c1", "C") is None
    table.leave("a1")
    assert table.admit("c1", "C") == []


def test_leaving_twice_or_unknown_is_harmless() -> None:
    table = ConnectionTable[str](max_connections=2, per_address=2)
    table.admit("a1", "A")
    table.leave("a1")
    table.leave("a1")
    table.leave("never")
    table.heard("never")
    assert len(table) == 0


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::ffff:abcd", "2001:db8::/64"),  # the same host rotating through its /64
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4 on a dual-stack socket
        ("", ""),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64(host: str, key: str) -> None:
    assert address_key(host) == key
