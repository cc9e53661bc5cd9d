"""The unsubscribe endpoint's HTML: the preference page and the error page.

Server-rendered with Jinja2 (autoescaped, strict variables) from the templates
beside this module. The pages work without JavaScript and load nothing else:
styles are inline, and forms post back to the URL the page was opened at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from mailwright.constants import CATEGORIES, ESSENTIAL_CATEGORIES
from mailwright.preferences import OPTIONAL_CATEGORIES, PreferenceView
from mailwright.quiet_hours import known_timezones


@dataclass(frozen=True)
class CategoryText:
    """How a category is named and explained to recipients."""

    name: str
    description: str


# The one place categories get their human names.
CATEGORY_TEXT: dict[str, CategoryText] = {
    "security": CategoryText(
        "Account security", "Password resets, sign-in alerts and other messages that keep your account safe."
    ),
    "transactional": CategoryText(
        "Orders and account activity", "Receipts, order confirmations and replies to things you asked us to do."
    ),
    "product": CategoryText("Product updates", "News about new features and changes to the product."),
    "marketing": CategoryText("Newsletter and offers", "Our newsletter, promotions and event invitations."),
}
assert set(CATEGORY_TEXT) == set(CATEGORIES), "every category needs a name and a description"

TEMPLATES_DIR = Path(__file__).resolve().parent


def category_text(category: str) -> CategoryText:
    """The name and description of a category (an unknown one is shown by its id)."""
    return CATEGORY_TEXT.get(category, CategoryText(category, ""))


def _timezone_choices() -> list[str]:
    """The time zones the page offers: IANA names of places (Europe/Paris), then UTC."""
    places = sorted(name for name in known_timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/")))
    return [*places, "UTC"]


class PageRenderer:
    """Renders the endpoint's pages; templates are compiled once per container."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def preferences(self, view: PreferenceView, *, token: str, show_unsubscribe: bool) -> str:
        """The preference center; `show_unsubscribe` adds the one-click offer for the link's category."""
        return self._env.get_template("preferences.html").render(
            view=view,
            token=token,
            link_category=category_text(view.claim.category),
            link_category_optional=view.claim.category in OPTIONAL_CATEGORIES,
            show_unsubscribe=show_unsubscribe,
            optional=[(c, category_text(c)) for c in OPTIONAL_CATEGORIES],
            essential=[(c, category_text(c)) for c in CATEGORIES if c in ESSENTIAL_CATEGORIES],
            timezones=_timezone_choices(),
        )

    def error(self, title: str, message: str, *, unchanged: bool = True) -> str:
        """A page explaining what went wrong; `unchanged` says that nothing was changed."""
        return self._env.get_template("error.html").render(title=title, message=message, unchanged=unchanged)
