"""A boto3 session bound to the local endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

# moto takes any credentials; these keep a developer's real ones out of local traffic.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class LocalSession(boto3.session.Session):
    """A boto3 session whose clients all talk to the local endpoint, with throwaway credentials.

    Explicit, unlike AWS_ENDPOINT_URL: the in-process workers and the CLI reach
    the local stack without changing the process environment. A service that
    moto does not serve the way the stack needs has its own endpoint in
    `service_endpoints` (the lanes' event source mappings: `{"lambda": url}`).
    """

    def __init__(
        self, endpoint_url: str, region: str = "us-east-1", *, service_endpoints: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
            region_name=region,
        )
        self.endpoint_url = endpoint_url
        self.service_endpoints = dict(service_endpoints or {})

    def client(self, *args: Any, **kwargs: Any) -> Any:
        """A client of the local endpoint (or of the service's own, in `service_endpoints`)."""
        service = args[0] if args else kwargs.get("service_name", "")
        kwargs.setdefault("endpoint_url", self.service_endpoints.get(service, self.endpoint_url))
        return super().client(*args, **kwargs)

    def resource(self, *args: Any, **kwargs: Any) -> Any:
        """A resource of the local endpoint."""
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        return super().resource(*args, **kwargs)
