"""The operations settings in the `mailwright` context: alarms, the breaker, SES sandbox and MAIL FROM."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, breaker_environment, parse_config
from mailwright.constants import Env

BASE: dict[str, Any] = {"sender": "no-reply@example.com"}


def parse(**settings: Any) -> Any:
    return parse_config({**BASE, **settings})


def test_defaults() -> None:
    config = parse()

    assert config.alarms.email == ""
    assert config.alarms.max_message_age_seconds == {"critical": 60, "standard": 300, "bulk": 3600, "feedback": 1800}
    assert config.alarms.ses_daily_quota == 50000
    assert config.alarms.quota_threshold == 40000
    assert config.alarms.auto_resume_bulk is False
    assert config.sandbox_recipients == ()
    assert config.mail_from_domain == ""
    assert config.extra == {}


def test_everything_set() -> None:
    config = parse(
        domain="example.com",
        alarm_email="ops@example.com",
        max_message_age_seconds={"critical": 120},
        ses_daily_quota=100000,
        auto_resume_bulk=True,
        sandbox_recipients=["Jane@Example.org", "example.net", "jane@example.org"],
        mail_from_domain="bounce.example.com",
    )

    assert config.alarms.email == "ops@example.com"
    # Unnamed queues keep their defaults.
    assert config.alarms.max_message_age_seconds == {"critical": 120, "standard": 300, "bulk": 3600, "feedback": 1800}
    assert config.alarms.quota_threshold == 80000
    assert config.alarms.auto_resume_bulk is True
    assert config.sandbox_recipients == ("jane@example.org", "example.net")
    assert config.mail_from_domain == "bounce.example.com"


def test_a_domain_gets_a_mail_from_subdomain_by_default() -> None:
    assert parse(domain="example.com").mail_from_domain == "mail.example.com"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alarm_email": "ops"}, "alarm_email must be an email address"),
        ({"max_message_age_seconds": {"urgent": 60}}, "unknown queues"),
        ({"max_message_age_seconds": {"critical": 30}}, ">= 60"),
        ({"max_message_age_seconds": [60]}, "must be an object"),
        ({"ses_daily_quota": 0}, "ses_daily_quota"),
        ({"auto_resume_bulk": "yes"}, "true or false"),
        ({"sandbox_recipients": "jane@example.org"}, "must be a list"),
        ({"sandbox_recipients": ["not an address"]}, "neither an address nor a domain"),
        ({"mail_from_domain": "mail.example.com"}, "needs mailwright.domain"),
        ({"domain": "example.com", "mail_from_domain": "mail.example.org"}, "subdomain of example.com"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(**settings)


@pytest.mark.parametrize("auto_resume", [False, True])
def test_breaker_environment(auto_resume: bool) -> None:
    config = parse(auto_resume_bulk=auto_resume)

    env = breaker_environment(config=config, mapping_id="uuid-1", alarm_names=["a", "b"])

    assert env[Env.LANE] == "bulk"
    assert env[Env.BREAKER_MAPPING_ID] == "uuid-1"
    assert env[Env.BREAKER_ALARMS] == "a,b"
    assert env[Env.BREAKER_AUTO_RESUME] == str(auto_resume).lower()
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Mailwright"
