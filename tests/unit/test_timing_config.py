"""Issue 17's settings: quiet-hours categories from context to the worker, and the digest window override."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, MailwrightConfig, parse_config, worker_environment
from mailwright.constants import Env
from mailwright.errors import ConfigurationError
from mailwright.settings import WorkerSettings
from tests.unit.test_infra_config import RESOURCES, context


def env_of(config: MailwrightConfig, lane: str) -> dict[str, str]:
    return worker_environment(config=config, lane=config.lanes[lane], queue_url="q", resources=RESOURCES)


def settings(**env: str) -> WorkerSettings:
    config = parse_config(context())
    return WorkerSettings.from_env({**env_of(config, "standard"), **env})


def test_marketing_and_product_wait_by_default_and_reach_the_worker() -> None:
    config = parse_config(context())
    assert config.quiet_hours_categories == ("product", "marketing")
    assert env_of(config, "bulk")[Env.QUIET_HOURS_CATEGORIES] == "product,marketing"
    assert settings().quiet_hours_categories == frozenset({"marketing", "product"})
    assert settings().digest_window_seconds is None


def test_context_may_name_other_categories_or_none() -> None:
    only = parse_config(context(quiet_hours_categories=["marketing"]))
    assert env_of(only, "bulk")[Env.QUIET_HOURS_CATEGORIES] == "marketing"
    none = parse_config(context(quiet_hours_categories=[]))
    env = env_of(none, "bulk")
    assert WorkerSettings.from_env(env).quiet_hours_categories == frozenset()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["security"], "always goes at once"),
        (["transactional", "marketing"], "always goes at once"),
        (["newsletters"], "unknown categories"),
        ("marketing", "must be a list"),
    ],
)
def test_bad_quiet_hours_categories_are_refused_naming_the_key(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=f"quiet_hours_categories.*{message}"):
        parse_config(context(quiet_hours_categories=value))


def test_the_digest_window_override_is_read_and_checked() -> None:
    assert settings(**{Env.DIGEST_WINDOW_SECONDS: "2"}).digest_window_seconds == 2
    for bad in ("0", "86401", "soon"):
        with pytest.raises(ConfigurationError, match=Env.DIGEST_WINDOW_SECONDS):
            settings(**{Env.DIGEST_WINDOW_SECONDS: bad})
    with pytest.raises(ConfigurationError, match=Env.QUIET_HOURS_CATEGORIES):
        settings(**{Env.QUIET_HOURS_CATEGORIES: "marketing,nightly"})
