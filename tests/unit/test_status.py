"""The status service: lookups by request id and by recipient (every readable key version, newest first, paged)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mailwright.address_keys import AddressHasher, AddressKeyring
from mailwright.constants import MESSAGE_LOG_REQUEST_SK, STATUS_SENT, Keys
from mailwright.errors import TransientError
from mailwright.ports import Outcome
from mailwright.status import (
    PLATFORM,
    InvalidLookupError,
    RequestNotFoundError,
    StatusService,
    Viewer,
    parse_search,
)
from mailwright.status_models import SearchRequest
from mailwright_tools.fakes import FakeMessageLog, FakeRecipientIndex, StaticAddressKeys

K1 = b"first-key-0123456789abcdef"
K2 = b"second-key-0123456789abcdef"
ONE = AddressHasher(AddressKeyring({1: K1}, current=1), readable_from=1)
# Rotated: new hashes use key 2; items hashed with key 1 are still stored (not migrated yet).
TWO = AddressHasher(AddressKeyring({1: K1, 2: K2}, current=2), readable_from=1)
T0 = 1_700_000_000.0
JANE = "jane@example.com"


def rid(n: int) -> str:
    return f"{n:032x}"


def outcome(
    n: int, *, address: str = JANE, hasher: AddressHasher = ONE, at: float | None = None, **extra: Any
) -> Outcome:
    return Outcome(
        request_id=rid(n),
        status=extra.pop("status", STATUS_SENT),
        lane="standard",
        template_id="order_confirmation",
        recipient_hash=hasher.address_hash(address),
        recipient_masked="j***@example.com",
        ses_message_id=f"ses-{n}" if extra.get("status", STATUS_SENT) == STATUS_SENT else None,
        completed_at=T0 + n if at is None else at,
        **extra,
    )


def service(log: FakeMessageLog, hasher: AddressHasher = ONE, index: FakeRecipientIndex | None = None) -> StatusService:
    return StatusService(log, index or FakeRecipientIndex(log), StaticAddressKeys(hasher))


def every_page(svc: StatusService, query: SearchRequest, viewer: Viewer = PLATFORM) -> list[list[str]]:
    """The request ids of each page, following `next` until it is null."""
    pages = []
    page = svc.search(query, viewer)
    pages.append([item.request_id for item in page.items])
    while page.next is not None:
        page = svc.search(query.model_copy(update={"next": page.next}), viewer)
        pages.append([item.request_id for item in page.items])
        assert len(pages) < 50, "pagination does not end"
    return pages


# -- by request id ---------------------------------------------------------------


def test_get_answers_the_logged_request_with_its_history() -> None:
    log = FakeMessageLog()
    log.record([outcome(1)])
    log.append_history(rid(1), {"event": "Delivery", "status": "delivered", "rank": 2, "at": T0 + 5})

    status = service(log).get(rid(1))

    assert (status.request_id, status.status, status.delivery) == (rid(1), "sent", "delivered")
    assert (status.provider, status.provider_message_id) == ("ses", "ses-1")
    assert [(entry.type, entry.status) for entry in status.history] == [(None, "sent"), ("Delivery", "delivered")]
    assert status.completed_at == datetime.fromtimestamp(T0 + 1, UTC)


@pytest.mark.parametrize("bad", ["", "xyz", ("ab" * 16).upper(), rid(1)[:31], rid(1) + "0", "../" + rid(1)[3:]])
def test_get_refuses_a_malformed_id_before_reading(bad: str) -> None:
    log = FakeMessageLog()

    with pytest.raises(InvalidLookupError) as raised:
        service(log).get(bad)

    assert raised.value.code == "invalid_request_id"
    assert log.calls["get"] == 0


def test_get_of_an_unknown_id_is_not_found() -> None:
    with pytest.raises(RequestNotFoundError) as raised:
        service(FakeMessageLog()).get(rid(7))

    assert raised.value.code == "not_found"


def test_a_producer_sees_its_own_requests_and_another_producers_as_not_found() -> None:
    # The message log as issue 15's API will record it: the producer's name on the request item.
    index = FakeRecipientIndex()
    for n, producer in ((1, "shop"), (2, "billing"), (3, None)):
        index.put(_item(n, producer=producer))
    svc = StatusService(ItemLog(index), index, StaticAddressKeys(ONE))

    assert svc.get(rid(1), Viewer(producer="shop")).producer == "shop"
    with pytest.raises(RequestNotFoundError):
        svc.get(rid(2), Viewer(producer="shop"))
    with pytest.raises(RequestNotFoundError):
        svc.get(rid(3), Viewer(producer="shop"))  # no producer recorded: the platform's alone
    assert svc.get(rid(2), PLATFORM).producer == "billing"


class ItemLog(FakeMessageLog):
    """A message log serving the items put into a FakeRecipientIndex (they may carry a producer)."""

    def __init__(self, index: FakeRecipientIndex) -> None:
        super().__init__()
        self._index = index

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self._index.requests([request_id]).get(request_id)


# -- by recipient ----------------------------------------------------------------


def test_search_lists_the_recipients_requests_newest_first_and_no_one_elses() -> None:
    log = FakeMessageLog()
    log.record([outcome(n) for n in range(1, 6)] + [outcome(9, address="john@example.com")])

    page = service(log).search(SearchRequest(recipient=" Jane@Example.COM "))

    assert [item.request_id for item in page.items] == [rid(n) for n in (5, 4, 3, 2, 1)]
    assert page.next is None


def test_pages_cover_every_request_once_in_order() -> None:
    log = FakeMessageLog()
    log.record([outcome(n) for n in range(1, 12)])

    pages = every_page(service(log), SearchRequest(recipient=JANE, limit=3))

    assert [len(page) for page in pages] == [3, 3, 3, 2]
    assert [r for page in pages for r in page] == [rid(n) for n in range(11, 0, -1)]


def test_a_page_that_ends_exactly_at_the_last_request_says_there_is_no_next() -> None:
    log = FakeMessageLog()
    log.record([outcome(n) for n in range(1, 7)])

    pages = every_page(service(log), SearchRequest(recipient=JANE, limit=3))

    assert pages == [[rid(6), rid(5), rid(4)], [rid(3), rid(2), rid(1)]]


def test_requests_completed_at_the_same_instant_are_all_listed_across_pages() -> None:
    log = FakeMessageLog()
    log.record([outcome(n, at=T0) for n in range(1, 8)])

    pages = every_page(service(log), SearchRequest(recipient=JANE, limit=2))

    listed = [r for page in pages for r in page]
    assert sorted(listed) == sorted(rid(n) for n in range(1, 8))
    assert len(listed) == len(set(listed))


def test_since_leaves_out_older_requests() -> None:
    log = FakeMessageLog()
    log.record([outcome(n) for n in range(1, 6)])
    since = datetime.fromtimestamp(T0 + 3, UTC)

    page = service(log).search(SearchRequest(recipient=JANE, since=since))

    assert [item.request_id for item in page.items] == [rid(5), rid(4), rid(3)]


def test_both_key_versions_are_searched_and_merged_by_time() -> None:
    # Requests 1, 3, 5 were logged under key 1; 2, 4, 6 after the rotation, under key 2.
    log = FakeMessageLog()
    log.record([outcome(n, hasher=ONE if n % 2 else TWO) for n in range(1, 7)])

    pages = every_page(service(log, TWO), SearchRequest(recipient=JANE, limit=4))

    assert pages == [[rid(6), rid(5), rid(4), rid(3)], [rid(2), rid(1)]]


def test_a_version_no_longer_readable_is_not_searched() -> None:
    # After the migration (readable_from moved to 2) items under key 1 would have been re-keyed.
    log = FakeMessageLog()
    log.record([outcome(1, hasher=ONE), outcome(2, hasher=TWO)])
    migrated = AddressHasher(TWO.keyring, readable_from=2)

    page = service(log, migrated).search(SearchRequest(recipient=JANE))

    assert [item.request_id for item in page.items] == [rid(2)]


def test_a_cursor_is_refused_for_another_recipient_since_or_viewer() -> None:
    log = FakeMessageLog()
    log.record([outcome(n) for n in range(1, 6)] + [outcome(n, address="john@example.com") for n in range(6, 9)])
    svc = service(log)
    first = svc.search(SearchRequest(recipient=JANE, limit=2))
    assert first.next is not None

    for query, viewer in (
        (SearchRequest(recipient="john@example.com", limit=2, next=first.next), PLATFORM),
        (SearchRequest(recipient=JANE, limit=2, since=datetime.fromtimestamp(T0, UTC), next=first.next), PLATFORM),
        (SearchRequest(recipient=JANE, limit=2, next=first.next), Viewer(producer="shop")),
    ):
        with pytest.raises(InvalidLookupError) as raised:
            svc.search(query, viewer)
        assert raised.value.code == "invalid_cursor"
    # The same search with another page size goes on.
    assert svc.search(SearchRequest(recipient=JANE, limit=5, next=first.next)).items


def test_a_changed_cursor_is_refused() -> None:
    log = FakeMessageLog()
    log.record([outcome(n) for n in range(1, 6)])
    svc = service(log)
    cursor = svc.search(SearchRequest(recipient=JANE, limit=2)).next
    assert cursor is not None
    body, mac = cursor.split(".")

    for forged in (body[:-1] + ("A" if body[-1] != "A" else "B") + "." + mac, body + "." + mac[::-1], "x." + mac):
        with pytest.raises(InvalidLookupError):
            svc.search(SearchRequest(recipient=JANE, next=forged))


def test_cursors_die_with_a_key_rotation() -> None:
    log = FakeMessageLog()
    log.record([outcome(n) for n in range(1, 6)])
    cursor = service(log, ONE).search(SearchRequest(recipient=JANE, limit=2)).next
    assert cursor is not None

    with pytest.raises(InvalidLookupError, match="rotated"):
        service(log, TWO).search(SearchRequest(recipient=JANE, next=cursor))


def test_a_producers_search_skips_other_producers_requests_and_fills_its_page() -> None:
    index = FakeRecipientIndex()
    # Newest first: 12 (shop), 11..4 (billing), 3..1 (shop).
    for n in range(1, 13):
        index.put(_item(n, producer="shop" if n in (1, 2, 3, 12) else "billing"))
    svc = StatusService(FakeMessageLog(), index, StaticAddressKeys(ONE), max_rounds=4)

    pages = every_page(svc, SearchRequest(recipient=JANE, limit=3), Viewer(producer="shop"))

    assert [r for page in pages for r in page] == [rid(12), rid(3), rid(2), rid(1)]
    assert pages[0] == [rid(12), rid(3), rid(2)]


def test_a_producer_page_may_come_back_short_when_the_rounds_run_out() -> None:
    index = FakeRecipientIndex()
    for n in range(1, 21):
        index.put(_item(n, producer="shop" if n == 1 else "billing"))
    svc = StatusService(FakeMessageLog(), index, StaticAddressKeys(ONE), max_rounds=2)

    pages = every_page(svc, SearchRequest(recipient=JANE, limit=3), Viewer(producer="shop"))

    # Two rounds of three read per page: the shop's one request comes on a later page, once.
    assert pages[0] == []
    assert [r for page in pages for r in page] == [rid(1)]


def test_index_entries_whose_item_is_gone_or_rehashed_are_skipped() -> None:
    index = FakeRecipientIndex()
    for n in (1, 2, 3):
        index.put(_item(n))
    # The index is eventually consistent: it may still point at an item that now holds another address.
    stale = _item(2)
    real_requests = index.requests

    def requests(request_ids: Any) -> dict[str, dict[str, Any]]:
        found = real_requests(request_ids)
        found.pop(rid(3), None)
        if rid(2) in found:
            found[rid(2)] = {**stale, Keys.RECIPIENT_HASH: ONE.address_hash("john@example.com")}
        return found

    index.requests = requests  # type: ignore[method-assign]
    svc = StatusService(FakeMessageLog(), index, StaticAddressKeys(ONE))

    assert [item.request_id for item in svc.search(SearchRequest(recipient=JANE)).items] == [rid(1)]


def test_a_failing_index_raises_transient() -> None:
    log = FakeMessageLog()
    index = FakeRecipientIndex(log)
    index.failures["newest"] = TransientError("throttled", "injected")

    with pytest.raises(TransientError):
        StatusService(log, index, StaticAddressKeys(ONE)).search(SearchRequest(recipient=JANE))


# -- the search body ----------------------------------------------------------------


def test_parse_search_reads_a_body_and_normalises_the_address() -> None:
    query = parse_search(b'{"recipient": " Jane@Example.com ", "since": "2026-11-01T00:00:00Z", "limit": 5}')

    assert query.recipient == JANE
    assert query.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert query.limit == 5


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        (b"", "invalid_json", "not JSON"),
        (b"{", "invalid_json", "not JSON"),
        (b"\xff\xfe", "invalid_json", "not JSON"),
        (b"[1]", "invalid_body", "JSON object"),
        (b"{}", "invalid_body", "recipient"),
        (b'{"recipient": "not-an-address"}', "invalid_body", "recipient"),
        (b'{"recipient": "a@b.co", "since": "2026-11-01T00:00:00"}', "invalid_body", "since"),
        (b'{"recipient": "a@b.co", "since": "yesterday"}', "invalid_body", "since"),
        (b'{"recipient": "a@b.co", "limit": 0}', "invalid_body", "limit"),
        (b'{"recipient": "a@b.co", "limit": 101}', "invalid_body", "limit"),
        (b'{"recipient": "a@b.co", "next": ""}', "invalid_body", "next"),
        (b'{"recipient": "a@b.co", "cursor": "x"}', "invalid_body", "cursor"),
        # As the OpenAPI document says: no number of seconds for `since`, no string or float for `limit`.
        (b'{"recipient": "a@b.co", "since": 6.1e-05}', "invalid_body", "since"),
        (b'{"recipient": "a@b.co", "since": "0"}', "invalid_body", "since"),
        (b'{"recipient": "a@b.co", "limit": "5"}', "invalid_body", "limit"),
        (b'{"recipient": "a@b.co", "limit": 5.0}', "invalid_body", "limit"),
    ],
)
def test_parse_search_refuses_bad_bodies_with_a_reason(body: bytes, code: str, says: str) -> None:
    with pytest.raises(InvalidLookupError) as raised:
        parse_search(body)

    assert raised.value.code == code
    assert says in raised.value.message


def _item(n: int, *, producer: str | None = None, address: str = JANE) -> dict[str, Any]:
    item: dict[str, Any] = {
        Keys.MESSAGES_PK: rid(n),
        Keys.MESSAGES_SK: MESSAGE_LOG_REQUEST_SK,
        "status": STATUS_SENT,
        "lane": "standard",
        Keys.RECIPIENT_HASH: ONE.address_hash(address),
        Keys.COMPLETED_AT: T0 + n,
        "history": [{"status": STATUS_SENT, "at": T0 + n, "evaluation": 1}],
    }
    if producer is not None:
        item["producer"] = producer
    return item


def test_a_version_not_started_on_the_first_page_is_read_on_the_next() -> None:
    # The two newest requests are under key 2; the first page holds only them, key 1 not yet begun.
    log = FakeMessageLog()
    log.record([outcome(n, hasher=ONE) for n in (1, 2, 3)] + [outcome(n, hasher=TWO) for n in (8, 9)])

    pages = every_page(service(log, TWO), SearchRequest(recipient=JANE, limit=2))

    assert pages == [[rid(9), rid(8)], [rid(3), rid(2)], [rid(1)]]
