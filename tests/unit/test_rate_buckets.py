"""Per-connection token buckets: made on first use, named consistently."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from chatserver.app import create_app
from chatserver.domain.clock import FakeClock
from chatserver.transport.context import ConnState
from chatserver.transport.http import CONTEXT
from chatserver.transport.liaison import LiaisonNamespace
from chatserver.transport.ratelimit import (
    UNPARSED_GROUP,
    AddressLimiter,
    address_group,
    client_address,
    forwarded_client,
)
from chatserver.transport.staff import StaffNamespace
from chatserver.transport.youth import YouthNamespace
from tests.conftest import make_settings


def test_every_event_names_a_real_bucket() -> None:
    for ns in (YouthNamespace, StaffNamespace, LiaisonNamespace):
        assert {bucket for bucket, _ in ns.EVENTS.values()} <= {"send", "other"}, ns


def test_buckets_are_born_on_first_use_and_then_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    ctx = create_app(settings)[CONTEXT]
    state = ConnState()
    assert state.send_bucket is None and state.other_bucket is None  # an idle youth
    waits = [ctx.take_token(state, "send", 0.0) for _ in range(settings.rate_send_burst + 1)]
    assert waits[:-1] == [0.0] * settings.rate_send_burst and waits[-1] > 0
    assert state.other_bucket is None  # the other kind is still untouched
    assert ctx.take_token(state, "other", 0.0) == 0.0 and state.other_bucket is not None


def test_address_limiter_slides_its_window() -> None:
    clock = FakeClock()
    limiter = AddressLimiter(clock, per_hour=3)
    key = limiter.key_for("203.0.113.7")
    assert [limiter.hit(key) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(600)
    assert limiter.hit(key) == pytest.approx(3000.0)  # the oldest leaves in 50 min
    clock.advance(3000)
    assert limiter.hit(key) == 0.0  # all three left the window together
    other = limiter.key_for("198.51.100.2")
    assert limiter.hit(other) == 0.0  # addresses do not share a budget
    clock.advance(3600)
    limiter.sweep()
    assert limiter.hit(key) == 0.0


# -- which bucket: address_group ---------------------------------------------------


def test_ipv6_addresses_of_one_64_share_a_group(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    a = address_group("2001:db8:1:2::1", settings)
    # Any interface id inside the /64, in any spelling, is the same client.
    for same in ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:DB8:1:2:0:0:0:7",
                 "2001:0db8:0001:0002::abcd", "2001:db8:1:2::1%eth0"):
        assert address_group(same, settings) == a, same
    assert a == "2001:db8:1:2::/64"
    # The neighbouring /64 is another subscriber.
    assert address_group("2001:db8:1:3::1", settings) != a


def test_ipv4_counts_per_address_and_mapped_ipv6_counts_as_ipv4(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    assert address_group("203.0.113.7", settings) == "203.0.113.7/32"
    assert address_group("203.0.113.8", settings) != address_group("203.0.113.7", settings)
    # The same IPv4 client reached over a dual-stack socket must not get a
    # second budget (nor 2^64 of them: ::ffff:0:0/96 is not a /64 of its own).
    assert address_group("::ffff:203.0.113.7", settings) == "203.0.113.7/32"
    assert address_group("::ffff:cb00:7107", settings) == "203.0.113.7/32"


def test_group_prefix_lengths_are_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", ipv4_group_prefix_len=24,
                             ipv6_group_prefix_len=56)
    assert address_group("203.0.113.7", settings) == address_group("203.0.113.200", settings)
    assert address_group("203.0.113.7", settings) == "203.0.113.0/24"
    assert address_group("2001:db8:1:2::1", settings) == address_group("2001:db8:1:ff::1",
                                                                       settings)
    assert address_group("2001:db8:1:100::1", settings) != address_group("2001:db8:1:2::1",
                                                                         settings)


@pytest.mark.parametrize("garbage", ["", "unknown", "not-an-ip", "1.2.3.4.5", "::g",
                                     "203.0.113.7:8080", "[2001:db8::1]", "\x00"])
def test_what_is_not_an_address_shares_one_group(tmp_path: Path, garbage: str) -> None:
    settings = make_settings(tmp_path / "var")
    assert address_group(garbage, settings) == UNPARSED_GROUP


# -- which address: forwarded_client and client_address ------------------------------


def test_one_proxy_the_rightmost_entry_is_the_client() -> None:
    # nginx's $proxy_add_x_forwarded_for appends the peer it saw to whatever
    # the client sent: only that last entry is the proxy's word.
    assert forwarded_client(["198.51.100.9"], 1) == "198.51.100.9"
    assert forwarded_client(["10.9.8.7, 203.0.113.66, 198.51.100.9"], 1) == "198.51.100.9"
    assert forwarded_client(["  2001:DB8::1 "], 1) == "2001:db8::1"


def test_two_proxies_the_second_entry_from_the_right_is_the_client() -> None:
    # e.g. a load balancer, then nginx: nginx appends the balancer's address.
    assert forwarded_client(["6.6.6.6, 198.51.100.9, 10.0.0.2"], 2) == "198.51.100.9"


def test_several_header_lines_are_one_list_in_order() -> None:
    assert forwarded_client(["6.6.6.6", "198.51.100.9"], 1) == "198.51.100.9"
    assert forwarded_client(["6.6.6.6", "198.51.100.9, 10.0.0.2"], 2) == "198.51.100.9"


@pytest.mark.parametrize(("values", "hops"), [
    ([], 1),                        # no header at all: the request came straight to us
    ([""], 1),                      # an empty header
    (["198.51.100.9"], 2),          # fewer entries than proxies: did not pass them all
    (["6.6.6.6, garbage"], 1),      # the trusted position holds no address
    (["6.6.6.6, unknown"], 1),      # nginx writes no "unknown", but others might
    (["6.6.6.6, 198.51.100.9:4711"], 1),  # ports are not part of X-Forwarded-For
    (["6.6.6.6,"], 1),              # a trailing comma leaves an empty last entry
])
def test_no_usable_entry_means_no_forwarded_client(values: list[str], hops: int) -> None:
    assert forwarded_client(values, hops) is None


def test_garbage_left_of_the_trusted_entry_is_ignored() -> None:
    assert forwarded_client(["<script>, , ;;, 198.51.100.9"], 1) == "198.51.100.9"


def _request(remote: str | None, *xff: str) -> object:
    headers = CIMultiDict(("X-Forwarded-For", v) for v in xff)
    return make_mocked_request("GET", "/", headers=headers).clone(remote=remote)


def test_client_address_ignores_the_spoofed_leftmost_entry(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", client_addr_header="X-Forwarded-For")
    assert settings.trusted_proxy_hops == 1  # the default with a header
    spoofed = [_request("127.0.0.1", f"203.0.113.{i}, 198.51.100.9") for i in range(1, 50)]
    assert {client_address(r, settings) for r in spoofed} == {"198.51.100.9"}


def test_client_address_falls_back_to_the_socket_peer(tmp_path: Path) -> None:
    proxied = make_settings(tmp_path / "var", client_addr_header="X-Forwarded-For",
                            trusted_proxy_hops=2)
    # Fewer entries than proxies, or garbage where the client should be: the
    # peer (the proxy, so one shared bucket), never an entry the client wrote.
    assert client_address(_request("127.0.0.1", "203.0.113.5"), proxied) == "127.0.0.1"
    assert client_address(_request("127.0.0.1", "203.0.113.5, evil, 10.0.0.2"),
                          proxied) == "127.0.0.1"
    assert client_address(_request("127.0.0.1", "203.0.113.5, 198.51.100.9, 10.0.0.2"),
                          proxied) == "198.51.100.9"
    direct = make_settings(tmp_path / "var")  # no header configured: the header means nothing
    assert client_address(_request("192.0.2.33", "203.0.113.5"), direct) == "192.0.2.33"
    assert client_address(_request(None), direct) is None
