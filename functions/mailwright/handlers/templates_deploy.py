"""The templates deployment: a CloudFormation custom resource that publishes the repository's changed bundles.

CDK's BucketDeployment stages the bundles under `templates/_deploy/` (pruned
there, nowhere else); this function then writes each staged bundle to
`templates/<id>.json` only where it differs from the latest version, and never
over a version published from the studio that the repository has not pulled
(mailwright.templates.publishing, `deploy_decision`). Nothing is deleted.

Properties: `Bucket`, `Acknowledged` (template id -> the studio version each
template's `published.json` names), `SourceDigest` (changes whenever the
templates or their bundler do, so CloudFormation calls again). Deleting the
resource leaves the bucket as it is.
"""

from __future__ import annotations

import json
import urllib.request
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from mailwright.adapters.template_store import S3TemplateStore
from mailwright.observability import service_logger
from mailwright.templates.publishing import SOURCE_DEPLOY, SyncResult, sync_bundles

logger = service_logger()

# CloudFormation shows the reason; it accepts 4 KB of response in all.
REASON_MAX_CHARS = 1000


@cache
def s3_client() -> Any:
    """The container's S3 client (standard retries)."""
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def deploy(properties: dict[str, Any], client: Any) -> SyncResult:
    """Copy the staged bundles that changed up to their live keys, keeping studio versions not pulled."""
    store = S3TemplateStore(client, str(properties["Bucket"]))
    acknowledged = {str(k): str(v) for k, v in (properties.get("Acknowledged") or {}).items()}
    result = sync_bundles(store, store.staged(), acknowledged=acknowledged, source=SOURCE_DEPLOY)
    for template_id, kept in result.kept.items():
        # The deploy finishes: a studio edit is live content, and the person who pulls it decides.
        logger.warning(
            "template kept: its latest version was published from the studio and is not in the repository",
            extra={"template_id": template_id, "version": kept.version_id, "note": kept.publication.note},
        )
    return result


def respond(event: dict[str, Any], status: str, reason: str, data: dict[str, str]) -> None:
    """PUT the result to the pre-signed URL CloudFormation waits on."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:REASON_MAX_CHARS],
            "PhysicalResourceId": event.get("PhysicalResourceId") or f"{event['LogicalResourceId']}-templates",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode("utf-8")
    url = str(event["ResponseURL"])
    if not url.startswith("https://"):
        raise ValueError("the ResponseURL is not https")
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - CloudFormation's https URL
        answer.read()


def handle(event: dict[str, Any], client: Any) -> tuple[str, str, dict[str, str]]:
    """The status, reason and data to answer CloudFormation with; never raises."""
    if event.get("RequestType") == "Delete":
        return "SUCCESS", "templates are kept when the deployment is removed", {}
    try:
        result = deploy(event.get("ResourceProperties") or {}, client)
    except Exception as exc:
        logger.exception("templates not deployed")
        return "FAILED", f"templates not deployed: {type(exc).__name__}: {exc}", {}
    data = {
        "Uploaded": ",".join(sorted(result.uploaded)),
        "Unchanged": ",".join(result.unchanged),
        "Kept": ",".join(sorted(result.kept)),
    }
    kept = f"; kept studio versions of {data['Kept']} (mailwright templates pull)" if result.kept else ""
    return "SUCCESS", f"{len(result.uploaded)} uploaded, {len(result.unchanged)} unchanged{kept}", data


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    """Answer one CloudFormation request (Create, Update or Delete); an unanswered request would hang the stack."""
    status, reason, data = handle(event, s3_client())
    logger.info("templates deployment", extra={"status": status, "reason": reason})
    respond(event, status, reason, data)
