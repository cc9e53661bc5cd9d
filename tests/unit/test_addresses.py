"""Address normalisation, hashing and masking."""

from __future__ import annotations

import pytest

from mailwright.addresses import InvalidAddressError, mask_address, normalize_address


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe@Example.COM  ", "jane.doe@example.com"),
        ("jane+news@example.com.", "jane+news@example.com"),
        ("o'brien@mail.example.co.uk", "o'brien@mail.example.co.uk"),
        ("jane@xn--bcher-kva.example", "jane@xn--bcher-kva.example"),
    ],
)
def test_normalize_trims_lowercases_and_accepts_valid_addresses(given: str, normalised: str) -> None:
    assert normalize_address(given) == normalised


@pytest.mark.parametrize(
    "address",
    [
        "jane",
        "jane@",
        "jane@@example.com",
        "a@b@example.com",
        "ja ne@example.com",
        "jane@exa\nmple.com",
        "jane\r@x.com",
    ],
)
def test_normalize_rejects_non_addresses(address: str) -> None:
    with pytest.raises(InvalidAddressError):
        normalize_address(address)


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(InvalidAddressError):
        normalize_address(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("jane@example.com", "j***@example.com"),
        ("  John.Doe@Example.com", "j***@example.com"),
        ("no-at-sign", "***"),
        ("@example.com", "***@example.com"),
    ],
)
def test_mask_keeps_the_first_character_and_the_domain(address: str, masked: str) -> None:
    assert mask_address(address) == masked


@pytest.mark.parametrize("address", ["jane@example.com", "jo@example.com", "john.doe+tag@example.com"])
def test_mask_never_shows_the_local_part(address: str) -> None:
    local = address.split("@")[0]
    masked = mask_address(address)
    assert local not in masked
    assert address not in masked
