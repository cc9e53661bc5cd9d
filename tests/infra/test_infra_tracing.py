"""X-Ray tracing of the functions: off by default (no traces billed, no X-Ray SDK at cold start), on when asked."""

from __future__ import annotations

from mailwright.constants import BREAKER_HANDLER, LANES
from tests.infra.synth import XRAY_ACTIONS, Resource, Synthesized, as_list, is_tracing_statement, role_statements

TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"


def _ours(synthesized: Synthesized) -> list[Resource]:
    functions = [
        resource
        for resource in synthesized.resources("AWS::Lambda::Function").values()
        if resource["Properties"]["Handler"].startswith("mailwright.")
    ]
    # The workers, feedback, unsubscribe, breaker, api, the events publisher, the dead-letter function and
    # the templates deploy function.
    assert len(functions) >= len(LANES) + 7
    assert any(f["Properties"]["Handler"] == BREAKER_HANDLER for f in functions)
    return functions


def _xray_grants(synthesized: Synthesized, function: Resource) -> list[dict[str, object]]:
    return [
        s
        for s in role_statements(synthesized, function)
        if is_tracing_statement(s) or any(str(a).startswith("xray:") for a in as_list(s["Action"]))
    ]


def test_by_default_no_function_is_traced_nor_may_write_traces(synthesized: Synthesized) -> None:
    assert synthesized.config.tracing is False
    for function in _ours(synthesized):
        props = function["Properties"]
        # No TracingConfig: Lambda's default (PassThrough), no segment of its own.
        assert "TracingConfig" not in props, props["Handler"]
        # Powertools is told, so the handlers build no Tracer and never import the X-Ray SDK.
        assert props["Environment"]["Variables"][TRACE_DISABLED] == "true", props["Handler"]
        # And the role has no X-Ray grant (least privilege).
        assert _xray_grants(synthesized, function) == [], props["Handler"]


def test_with_tracing_every_function_is_traced_actively(domain_synthesized: Synthesized) -> None:
    assert domain_synthesized.config.tracing is True
    for function in _ours(domain_synthesized):
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}, props["Handler"]
        assert TRACE_DISABLED not in props["Environment"]["Variables"], props["Handler"]
        # X-Ray's two actions, on "*" (they have no resource type); CDK may merge other "*" actions into it.
        grants = _xray_grants(domain_synthesized, function)
        assert len(grants) == 1, (props["Handler"], grants)
        actions = {str(a) for a in as_list(grants[0]["Action"])}
        assert actions >= XRAY_ACTIONS and as_list(grants[0]["Resource"]) == ["*"], (props["Handler"], grants)


def test_the_api_stages_are_traced_as_the_functions_are(
    synthesized: Synthesized, domain_synthesized: Synthesized
) -> None:
    for synth in (synthesized, domain_synthesized):
        stages = [r["Properties"] for r in synth.resources("AWS::ApiGateway::Stage").values()]
        # The HTTPS API, and the producers' API where producers are declared.
        assert stages
        assert all(stage.get("TracingEnabled", False) is synth.config.tracing for stage in stages), stages
    assert len(domain_synthesized.resources("AWS::ApiGateway::Stage")) == 2
