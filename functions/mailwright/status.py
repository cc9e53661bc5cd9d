"""What happened to a request: looked up by request id, or by recipient address (newest first, a page at a time).

The status API's handler and the CLI's `status` both call this service, so
they answer alike. A lookup by address never reads or stores the address
itself: it is hashed with the address keyring into every form it may be
stored under (the current key version and the older readable ones), each
form's requests are read from the recipient index newest first, and the
streams are merged. Pages continue from a signed cursor (`mailwright.cursors`).

Who asks is a `Viewer`: the platform team (IAM callers, the CLI) sees every
request; a producer (an API key, once the HTTPS API has them) sees only the
requests recorded with its producer name, and another producer's request is
"not found", never "forbidden", so ids and addresses leak nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mailwright.constants import REQUEST_ID_PATTERN, Keys
from mailwright.cursors import CursorCodec, CursorError, SearchCursor
from mailwright.errors import MailwrightError
from mailwright.ports import AddressKeySource, IndexEntry, MessageLog, RecipientIndex
from mailwright.request import describe_validation_error
from mailwright.status_models import MessageStatus, MessageSummary, SearchPage, SearchRequest

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
# The cursor key is derived from the current address key, for this use only.
_CURSOR_KEY_LABEL = b"mailwright status search cursor v1"
# A producer's search skips other producers' requests: read at most this many index pages to fill one page.
DEFAULT_MAX_ROUNDS = 3


class StatusLookupError(MailwrightError):
    """A lookup that cannot be answered as asked; `code` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidLookupError(StatusLookupError):
    """The request id, the search body or its cursor is malformed."""


class RequestNotFoundError(StatusLookupError):
    """No request with this id is in the message log (or the viewer may not see it)."""

    def __init__(self, request_id: str) -> None:
        super().__init__("not_found", f"no request {request_id} in the message log (not processed yet, or expired)")


@dataclass(frozen=True)
class Viewer:
    """Who asks: the platform team (`producer` None) sees every request, a producer only its own."""

    producer: str | None = None

    def sees(self, item: Mapping[str, Any]) -> bool:
        """Whether this viewer may see the request item."""
        return self.producer is None or item.get("producer") == self.producer

    @property
    def scope(self) -> str:
        """What a search cursor is bound to, so it cannot be carried from one viewer to another."""
        return "platform" if self.producer is None else "producer:" + self.producer


PLATFORM = Viewer()


def parse_search(body: str | bytes | None) -> SearchRequest:
    """A search body as the API receives it; raise InvalidLookupError with a readable reason."""
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidLookupError("invalid_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidLookupError("invalid_body", 'the body must be a JSON object such as {"recipient": "..."}')
    try:
        return SearchRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidLookupError("invalid_body", describe_validation_error(exc)) from None


@dataclass
class _Stream:
    """The requests stored under one key version's hash of the address, as far as this search has read them."""

    version: int
    address_hash: str
    after: IndexEntry | None = None
    done: bool = False
    buffer: list[IndexEntry] = field(default_factory=list)
    more: bool = True


class StatusService:
    """Answers status lookups from the message log and its recipient index."""

    def __init__(
        self,
        log: MessageLog,
        index: RecipientIndex,
        address_keys: AddressKeySource,
        *,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
    ) -> None:
        self._log = log
        self._index = index
        self._keys = address_keys
        self._max_rounds = max_rounds

    def get(self, request_id: str, viewer: Viewer = PLATFORM) -> MessageStatus:
        """The status of one request; raise InvalidLookupError for a malformed id, RequestNotFoundError if unknown."""
        if not _REQUEST_ID.match(request_id):
            raise InvalidLookupError(
                "invalid_request_id", "a request id is 32 lower-case hexadecimal characters, as `send` prints it"
            )
        item = self._log.get(request_id)
        if item is None or not viewer.sees(item):
            raise RequestNotFoundError(request_id)
        return MessageStatus.from_item(item)

    def search(self, query: SearchRequest, viewer: Viewer = PLATFORM) -> SearchPage:
        """One page of the requests sent to `query.recipient`, newest first, and the cursor of the next."""
        hasher = self._keys.hasher()
        hashes = hasher.address_hashes(query.recipient)
        versions = range(hasher.current, hasher.current - len(hashes), -1)
        streams = [_Stream(version, address_hash) for version, address_hash in zip(versions, hashes, strict=True)]
        codec = CursorCodec(hmac.new(hasher.keyring.keys[hasher.current], _CURSOR_KEY_LABEL, hashlib.sha256).digest())
        since = query.since.timestamp() if query.since else None
        # The current hash names the address; older forms follow from it and the keyring.
        bound_to = f"{hashes[0]}|{since!r}|{viewer.scope}"
        if query.next is not None:
            try:
                cursor = codec.decode(query.next, query=bound_to)
            except CursorError as exc:
                raise InvalidLookupError("invalid_cursor", str(exc)) from None
            for stream in streams:
                # A version the cursor does not name was read to its end (or was not readable then).
                stream.done = stream.version not in cursor.positions
                stream.after = cursor.positions.get(stream.version)
        found = self._collect(streams, since=since, limit=query.limit, viewer=viewer, hashes=frozenset(hashes))
        live = [stream for stream in streams if not stream.done]
        if not live:
            return SearchPage(items=found)
        positions = {stream.version: stream.after for stream in live}
        return SearchPage(items=found, next=codec.encode(SearchCursor(positions), query=bound_to))

    def _collect(
        self, streams: list[_Stream], *, since: float | None, limit: int, viewer: Viewer, hashes: frozenset[str]
    ) -> list[MessageSummary]:
        """Merge the streams newest first until `limit` visible requests are found, the streams end, or rounds do."""
        found: list[MessageSummary] = []
        for _ in range(self._max_rounds):
            live = [stream for stream in streams if not stream.done]
            if len(found) >= limit or not live:
                break
            for stream in live:
                # One more than a page: an entry left unread says for sure that the stream goes on.
                page = self._index.newest(stream.address_hash, since=since, after=stream.after, limit=limit + 1)
                stream.buffer, stream.more = list(page.entries), page.more
            merged = _merge(live, limit)
            items = self._index.requests([entry.request_id for _, entry in merged])
            consumed = dict.fromkeys((stream.version for stream in live), 0)
            for stream, entry in merged:
                if len(found) >= limit:
                    break
                stream.after = entry
                consumed[stream.version] += 1
                item = items.get(entry.request_id)
                # The index is eventually consistent: an item since expired or re-keyed is skipped.
                if item is not None and item.get(Keys.RECIPIENT_HASH) in hashes and viewer.sees(item):
                    found.append(MessageSummary.from_item(item))
            for stream in live:
                stream.done = consumed[stream.version] == len(stream.buffer) and not stream.more
        return found


def _merge(streams: list[_Stream], limit: int) -> list[tuple[_Stream, IndexEntry]]:
    """Up to `limit` entries of the streams' buffers, newest first, each stream's in its own order."""
    heads = dict.fromkeys((stream.version for stream in streams), 0)
    merged: list[tuple[_Stream, IndexEntry]] = []
    while len(merged) < limit:
        ready = [stream for stream in streams if heads[stream.version] < len(stream.buffer)]
        if not ready:
            break
        newest = max(ready, key=lambda s: (s.buffer[heads[s.version]].completed_at, s.version))
        merged.append((newest, newest.buffer[heads[newest.version]]))
        heads[newest.version] += 1
    return merged
