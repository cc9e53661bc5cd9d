"""Unsubscribe endpoint (Lambda function URL): the preference page, its form posts and RFC 8058 one-click.

GET shows the page and changes nothing (mail scanners prefetch links). POST
with `List-Unsubscribe=One-Click` opts the link's user out of its category
and answers 200, never a redirect. Any other POST is the page's own form. The
signed token in the link is the only authorisation: no login, no cookies.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailwright.addresses import mask_address
from mailwright.constants import ESSENTIAL_CATEGORIES
from mailwright.observability import service_logger, service_tracer
from mailwright.pages import PageRenderer, category_text
from mailwright.preferences import SOURCE_PREFERENCE_CENTER, CategoryNotAllowedError, PreferenceView, UnsubscribeService
from mailwright.settings import UnsubscribeSettings
from mailwright.tokens import ExpiredTokenError, InvalidTokenError
from mailwright.web import HTML, TEXT, WebRequest, response
from mailwright.wiring import build_unsubscribe_service

logger = service_logger()
tracer = service_tracer()
pages = PageRenderer()

ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
ALLOWED_METHODS = ("GET", "HEAD", "POST")


@cache
def service() -> UnsubscribeService:
    """The container's unsubscribe service, built (and its settings checked) on the first request."""
    return build_unsubscribe_service(UnsubscribeSettings.from_env())


# The response is the page, and its forms carry the token: never recorded in a trace.
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one request to the unsubscribe function URL."""
    return handle(service(), event)


def handle(svc: UnsubscribeService, event: Mapping[str, Any]) -> dict[str, Any]:
    """Answer a payload format 2.0 event with `svc` (the local server and the tests call this too)."""
    request = WebRequest.from_event(event)
    if request.method not in ALLOWED_METHODS:
        return response(405, "Method not allowed.\n", TEXT, {"Allow": ", ".join(ALLOWED_METHODS)})
    # The page's forms carry the token in a hidden field; links and one-click POSTs in the query.
    token = request.form_value("token") or request.query_value("token") or ""
    try:
        return _answer(svc, request, token)
    except ExpiredTokenError:
        logger.info("unsubscribe link expired", method=request.method)
        message = "For your security, links in our emails stop working after a while."
        return _error(400, "This link has expired", message)
    except InvalidTokenError:
        logger.info("unsubscribe link not valid", method=request.method)
        return _error(400, "This link is not valid", "The link is incomplete or was changed, perhaps when copying it.")
    except CategoryNotAllowedError as exc:
        logger.info("refused to opt out of a category", category=exc.category)
        return _error(400, *_refusal(exc.category))
    except Exception:  # the page is the only place to tell the recipient; logged with its traceback
        logger.exception("unsubscribe request failed", method=request.method)
        page = pages.error("Something went wrong", "Please try again in a few minutes.", unchanged=False)
        return response(503, page, HTML, {"Retry-After": "60"})


def _answer(svc: UnsubscribeService, request: WebRequest, token: str) -> dict[str, Any]:
    if request.method in ("GET", "HEAD"):
        view = svc.view(token)
        page = pages.preferences(view, token=token, show_unsubscribe=request.query_value("view") != "preferences")
        return response(200, "" if request.method == "HEAD" else page, HTML)
    if request.form_value(ONE_CLICK_FIELD) == ONE_CLICK_VALUE:  # RFC 8058: a mail client, not a person
        _log_change(svc.one_click(token))
        return response(200, "You are unsubscribed.\n", TEXT)
    action = request.form_value("action")
    if action == "unsubscribe":
        view = svc.one_click(token, source=SOURCE_PREFERENCE_CENTER)
    elif action in ("save", "unsubscribe_all"):
        view = svc.save(token, receive=request.form.get("receive", []), unsubscribe_all=action == "unsubscribe_all")
    else:
        return _error(400, "This request was not understood", "Use the buttons on the preferences page.")
    _log_change(view)
    return response(200, pages.preferences(view, token=token, show_unsubscribe=False), HTML)


def _error(status: int, title: str, message: str) -> dict[str, Any]:
    return response(status, pages.error(title, message), HTML)


def _refusal(category: str) -> tuple[str, str]:
    if category in ESSENTIAL_CATEGORIES:
        return "These emails cannot be turned off", f"{category_text(category).name} messages are always sent."
    return "This link is not valid", "It names a kind of email we do not send."


def _log_change(view: PreferenceView) -> None:
    # The current key of the user (an old link carries an unkeyed address hash: never logged).
    user_id = view.preferences.user_id
    logger.info(
        "preferences changed",
        # User ids are opaque or keyed address hashes; a producer may still have used an address.
        user_id=mask_address(user_id) if "@" in user_id else user_id,
        change=view.done,
        link_category=view.claim.category,
        opted_out=sorted(view.preferences.opted_out),
        unsubscribed_all=view.preferences.unsubscribed_all,
    )
