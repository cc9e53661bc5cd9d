"""Shared boto3 plumbing: client configuration and error classification."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, DataNotFoundError
from botocore.loaders import Loader

from mailwright.errors import ThrottledError, TransientError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "LimitExceededException",
    }
)


def client_config(*, max_attempts: int, pool: int = 32, read_timeout: float = 10.0) -> Config:
    """botocore's standard retry mode, with a connection pool sized for concurrent sends."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=pool,
        connect_timeout=3,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )


def error_code(exc: ClientError) -> str:
    """The service's error code of a ClientError."""
    error: Any = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def as_transient(exc: Exception, what: str) -> TransientError:
    """Wrap a boto error in the TransientError the domain understands."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in THROTTLING_CODES:
            return ThrottledError("throttled", f"{what}: {code}")
        return TransientError(f"{what}_failed", f"{what}: {code}: {exc}")
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{what}_unreachable", f"{what}: {exc}")
    return TransientError(f"{what}_failed", f"{what}: {exc}")


class AwsSession(Protocol):
    """What the wiring asks of a session: a boto3 Session (tests, the local stack) or a `BotocoreSession`."""

    # `Any`: boto3-stubs' Session.client is overloaded on the service's literal name.
    def client(self, service_name: Any, *, region_name: str | None = None, config: Config | None = None) -> Any:
        """A low-level client of `service_name`."""
        ...


class BotocoreSession:
    """boto3's `Session.client` on botocore alone, for the Lambda functions.

    The functions use low-level clients only, which botocore builds; importing boto3 also imports
    s3transfer, concurrent.futures' process pool and multiprocessing, a tenth of a send worker's cold start.
    Credentials, region, retries and AWS_ENDPOINT_URL are botocore's either way.
    """

    def __init__(self) -> None:
        import botocore.session  # the session module loads most of botocore: when a session is made

        self._session = botocore.session.get_session()
        self._session.register_component("data_loader", model_loader(self._session.get_config_variable("data_path")))

    def client(self, service_name: str, *, region_name: str | None = None, config: Config | None = None) -> Any:
        """A low-level client; the clients of one session share its loader, so each data file is read once."""
        return self._session.create_client(service_name, region_name=region_name, config=config)


class ModelLoader(Loader):
    """botocore's data loader, without its scan of every service's directory when a client is made.

    To check that a client's service exists, botocore's loader lists the directory of each of its ~400
    services (and each API version's), once per model type: about twice 20 ms of CPU at a cold start, for
    a worker that builds four clients. Here that check asks the service's own directory; the full list is
    still read when anything else reads it (botocore's "unknown service" error, `get_available_services`).
    """

    def list_available_services(self, type_name: str) -> list[str]:
        """The services that have a `type_name` model (e.g. service-2), listed on demand."""
        return AvailableServices(self, type_name)


class AvailableServices(list[str]):
    """`Loader.list_available_services`'s list, filled on first read; `in` a known service reads one directory."""

    def __init__(self, loader: ModelLoader, type_name: str) -> None:
        super().__init__()
        self._loader = loader
        self._type_name = type_name
        self._filled = False

    def _fill(self) -> None:
        if not self._filled:
            self._filled = True
            self.extend(Loader.list_available_services(self._loader, self._type_name))

    def __contains__(self, service: object) -> bool:
        if not self._filled and isinstance(service, str) and service and os.sep not in service:
            try:
                if self._loader.list_api_versions(service, self._type_name):
                    return True
            except DataNotFoundError:
                pass
        # Not found (botocore then names the known services): the full list, as botocore's own loader has it.
        self._fill()
        return super().__contains__(service)

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        self._fill()
        return super().__getitem__(index)

    def __repr__(self) -> str:
        self._fill()
        return super().__repr__()

    def __eq__(self, other: object) -> bool:
        self._fill()
        return super().__eq__(other)

    __hash__ = None  # a list


def model_loader(data_path: str | None) -> ModelLoader:
    """The loader botocore's `create_loader` makes (AWS_DATA_PATH's directories first), as a `ModelLoader`."""
    if data_path is None:
        return ModelLoader()
    paths = [os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)]
    return ModelLoader(extra_search_paths=paths)


class LazyClient:
    """A client built on its first use, for one a batch may never call (the queue's, for retries and deferrals).

    Building a client loads its service model and endpoint rules (tens of milliseconds of a cold start).
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._build is not None:
                    self._client = self._build()
                    self._build = None
        return getattr(self._client, name)
