"""The webhook URL guard (server-side request forgery): https only, public addresses only, checked when resolved."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from mailwright.webhooks.errors import ForbiddenTargetError
from mailwright.webhooks.transport import Target, address_allowed, check_url, resolve


def resolver(*addresses: str) -> Any:
    def lookup(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return lookup


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",  # the instance metadata service
        "100.64.0.1",  # shared address space
        "0.0.0.0",  # noqa: S104 - an address to refuse, nothing binds it
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "not-an-ip",
    ],
)
def test_non_public_addresses_are_not_allowed(address: str) -> None:
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(address)


def test_loopback_is_allowed_only_when_asked() -> None:
    assert address_allowed("127.0.0.1", allow_loopback=True)
    assert address_allowed("::1", allow_loopback=True)
    assert not address_allowed("10.0.0.1", allow_loopback=True)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.example.com/in", "not_https"),
        ("ftp://hooks.example.com/in", "not_https"),
        ("https://10.0.0.1/in", "private_address"),
        ("https://[::1]/in", "private_address"),
        ("https://169.254.169.254/latest/meta-data", "private_address"),
        ("https://localhost/in", "private_address"),
        ("https://user:pw@hooks.example.com/in", "bad_url"),
        ("https:///in", "bad_url"),
        ("https://hooks.example.com:99999/in", "bad_url"),
    ],
)
def test_urls_refused_before_any_lookup(url: str, code: str) -> None:
    with pytest.raises(ForbiddenTargetError) as caught:
        check_url(url)
    assert caught.value.code == code


def test_a_host_resolving_to_a_private_address_is_refused_when_resolved() -> None:
    with pytest.raises(ForbiddenTargetError) as caught:
        resolve("https://rebind.example.com/in", resolver=resolver("10.0.0.7"))
    assert caught.value.code == "private_address"


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(ForbiddenTargetError):
        resolve("https://mixed.example.com/in", resolver=resolver("93.184.216.34", "127.0.0.1"))


def test_an_unresolvable_host_is_refused() -> None:
    def fails(*_: Any, **__: Any) -> list[Any]:
        raise socket.gaierror("Name or service not known")

    with pytest.raises(ForbiddenTargetError) as caught:
        resolve("https://nowhere.example.com/in", resolver=fails)
    assert caught.value.code == "unresolvable"


def test_a_public_host_resolves_to_a_pinned_target() -> None:
    target = resolve("https://hooks.example.com/mailwright?x=1", resolver=resolver("93.184.216.34"))
    assert target == Target(
        scheme="https", host="hooks.example.com", port=443, path="/mailwright?x=1", address="93.184.216.34"
    )
    assert target.host_header == "hooks.example.com"
    assert Target("https", "h.example.com", 8443, "/", "93.184.216.34").host_header == "h.example.com:8443"


def test_the_local_stack_may_call_loopback_over_http() -> None:
    target = resolve("http://127.0.0.1:8080/hook", allow_loopback=True, resolver=resolver("127.0.0.1"))
    assert (target.scheme, target.port, target.address) == ("http", 8080, "127.0.0.1")
    with pytest.raises(ForbiddenTargetError):
        check_url("http://hooks.example.com/in", allow_loopback=True)  # plain http only to loopback
