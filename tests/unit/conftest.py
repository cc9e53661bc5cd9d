"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwright.sending import SendService
from mailwright_tools.fakes import FakeWorld, build_fake_service

REPO = Path(__file__).resolve().parents[2]

FakeServiceFactory = Callable[..., tuple[SendService, FakeWorld]]


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
def fake_service() -> Iterator[FakeServiceFactory]:
    """Build a SendService on fresh fakes: `service, world = fake_service(lane="bulk")`; pools are closed after."""
    worlds: list[FakeWorld] = []

    def make(**overrides: Any) -> tuple[SendService, FakeWorld]:
        service, world = build_fake_service(**overrides)
        worlds.append(world)
        return service, world

    yield make
    for world in worlds:
        world.close()


@pytest.fixture
def service_and_world(fake_service: FakeServiceFactory) -> tuple[SendService, FakeWorld]:
    """A standard-lane service with no rate limits."""
    return fake_service()
