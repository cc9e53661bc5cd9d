"""Synthesize the stack once per session from the real cdk.json context."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from infra.config import MailwrightConfig
from tests.infra.synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack as cdk.json configures it (sender identity, no domain)."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    """The synthesized template."""
    return synthesized.template


@pytest.fixture(scope="session")
def config(synthesized: Synthesized) -> MailwrightConfig:
    """The settings the stack was built from."""
    return synthesized.config


@pytest.fixture(scope="session")
def domain_synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack with a sending domain set, so the identity is the domain (Easy DKIM).

    It also switches on the settings that are off or empty in cdk.json (mirroring to
    SES's suppression list, the message log's backups, an alarm email, auto-resume of the bulk lane, sandbox
    recipients, other alarm thresholds, open and click events instead of deliveries) and
    takes the unsubscribe endpoint's concurrency cap away and the API's logging role (an
    account that has one), declares producers and WAF, and traces the functions with X-Ray, so one more synth
    covers them all.
    """
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-domain"),
        domain="example.com",
        sender="no-reply@example.com",
        mirror_ses_suppression_list=True,
        message_log_backups=True,
        alarm_email="ops@example.com",
        auto_resume_bulk=True,
        sandbox_recipients=["jane@example.org", "example.net"],
        ses_daily_quota=200000,
        max_message_age_seconds={"critical": 120, "feedback": 600},
        unsubscribe={"reserved_concurrency": None},
        event_tracking={"delivery": False, "opens_clicks": True},
        api={
            "throttling_rate_limit": 7.5,
            "throttling_burst_limit": 15,
            "cloudwatch_role": False,
            "producers": {"billing": {"rate_limit": 5, "burst_limit": 10, "quota_per_day": 2000}, "crm": {}},
            "waf": {"rate_limit": 500, "window_seconds": 60},
        },
        tracing=True,
    )
