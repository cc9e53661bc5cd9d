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

    It also switches on the settings that are off in cdk.json (mirroring to SES's
    suppression list), so one more synth covers both.
    """
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-domain"),
        domain="example.com",
        sender="no-reply@example.com",
        mirror_ses_suppression_list=True,
    )
