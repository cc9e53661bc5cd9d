"""Deliverability: with a domain, a custom MAIL FROM domain and every DNS record to publish, as stack outputs."""

from __future__ import annotations

import pytest

from mailwright.constants import Outputs
from tests.infra.synth import Synthesized, render

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow

DNS_OUTPUTS = {
    Outputs.dkim_record(1),
    Outputs.dkim_record(2),
    Outputs.dkim_record(3),
    Outputs.MAIL_FROM_MX_RECORD,
    Outputs.MAIL_FROM_SPF_RECORD,
    Outputs.DMARC_RECORD,
}


def _identity_id(synthesized: Synthesized) -> str:
    (logical_id,) = synthesized.resources("AWS::SES::EmailIdentity")
    return logical_id


def _output(synthesized: Synthesized, key: str) -> str:
    rendered: str = render(synthesized.json["Outputs"][key]["Value"])
    return rendered


def test_the_domain_identity_gets_a_custom_mail_from_domain(domain_synthesized: Synthesized) -> None:
    domain_synthesized.template.has_resource_properties(
        "AWS::SES::EmailIdentity",
        {
            "EmailIdentity": "example.com",
            "MailFromAttributes": {"MailFromDomain": "mail.example.com", "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"},
        },
    )
    assert domain_synthesized.config.mail_from_domain == "mail.example.com"


def test_every_record_to_publish_is_an_output(domain_synthesized: Synthesized) -> None:
    assert set(domain_synthesized.json["Outputs"]) >= DNS_OUTPUTS


@pytest.mark.parametrize("number", [1, 2, 3])
def test_the_three_easy_dkim_cnames(domain_synthesized: Synthesized, number: int) -> None:
    identity = _identity_id(domain_synthesized)

    assert _output(domain_synthesized, Outputs.dkim_record(number)) == (
        f"${{{identity}.DkimDNSTokenName{number}}} CNAME ${{{identity}.DkimDNSTokenValue{number}}}"
    )


def test_mail_from_mx_and_spf_records(domain_synthesized: Synthesized) -> None:
    assert _output(domain_synthesized, Outputs.MAIL_FROM_MX_RECORD) == (
        "mail.example.com MX 10 feedback-smtp.${AWS::Region}.amazonses.com"
    )
    assert _output(domain_synthesized, Outputs.MAIL_FROM_SPF_RECORD) == (
        'mail.example.com TXT "v=spf1 include:amazonses.com ~all"'
    )


def test_a_suggested_dmarc_record(domain_synthesized: Synthesized) -> None:
    assert _output(domain_synthesized, Outputs.DMARC_RECORD) == (
        '_dmarc.example.com TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"'
    )


def test_without_a_domain_there_is_nothing_to_publish(synthesized: Synthesized) -> None:
    assert not DNS_OUTPUTS & set(synthesized.json["Outputs"])
    (identity,) = synthesized.resources("AWS::SES::EmailIdentity").values()
    assert "MailFromAttributes" not in identity["Properties"]
