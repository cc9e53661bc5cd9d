"""Search cursors: opaque, bound to their query, and refused when anything in them changes."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.cursors import CursorCodec, CursorError, SearchCursor
from mailwright.ports import IndexEntry

KEY = b"cursor-key-0123456789abcdef"
QUERY = "k1-abc|None|platform"
CURSOR = SearchCursor({2: IndexEntry("ab" * 16, 1_700_000_000.125), 1: None})


def test_a_cursor_round_trips_for_its_query() -> None:
    codec = CursorCodec(KEY)

    token = codec.encode(CURSOR, query=QUERY)

    assert codec.decode(token, query=QUERY) == CURSOR
    # Opaque to the caller: URL-safe, no padding, nothing of the query in it.
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert "k1-abc" not in base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()


def test_a_cursor_for_another_query_or_key_is_refused() -> None:
    token = CursorCodec(KEY).encode(CURSOR, query=QUERY)

    with pytest.raises(CursorError):
        CursorCodec(KEY).decode(token, query="k1-other|None|platform")
    with pytest.raises(CursorError):
        CursorCodec(b"another-key-0123456789abcdef").decode(token, query=QUERY)


@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw-_x0"))
def test_any_changed_character_is_refused(position: int, replacement: str) -> None:
    codec = CursorCodec(KEY)
    token = codec.encode(CURSOR, query=QUERY)
    index = position % len(token)
    if token[index] == replacement or token[index] == ".":
        return
    forged = token[:index] + replacement + token[index + 1 :]

    with pytest.raises(CursorError):
        codec.decode(forged, query=QUERY)


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.", ".abc", "a b.c", "abc.d=f", "é.x", "a.b.c"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(CursorError):
        CursorCodec(KEY).decode(token, query=QUERY)


def test_a_signed_payload_this_release_cannot_read_is_refused_as_another_version() -> None:
    codec = CursorCodec(KEY)
    for payload in ({"v": 2, "p": {}}, {"v": 1, "p": {"1": [1.0, "not-an-id"]}}, {"v": 1, "p": {"x": None}}, []):
        raw = json.dumps(payload, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        mac = base64.urlsafe_b64encode(codec._mac(raw, QUERY)).rstrip(b"=").decode()

        with pytest.raises(CursorError, match="another version"):
            codec.decode(f"{body}.{mac}", query=QUERY)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        CursorCodec(b"short")
