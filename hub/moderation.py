"""What may not be said between a minor and anyone else on the platform: ways to get in touch
outside it. Used by the break-room chat and the room chat."""

from __future__ import annotations

import re

from flask_babel import gettext as _

from hub.errors import HubError

_PHONE = re.compile(r"(?<!\d)(?:\+|00)?\d(?:[\s.\-/()]*\d){7,}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+\s*(?:@|\(at\)|\[at\])\s*[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_LINK = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|dk|net|org|io|me|gg|ly|app|co|se|no|de|eu|tv|link|info)\b(?:/\S*)?",
    re.IGNORECASE,
)
_HANDLE = re.compile(
    r"(?<![\w.])@[A-Za-z0-9_.]{2,30}\b|\b(?:snap(?:chat)?|insta(?:gram)?|tiktok|discord|telegram|whatsapp)\b",
    re.IGNORECASE,
)


class Blocked(HubError):
    """A message that was not sent; `details.reason` says which kind of contact it carried."""

    code = "blocked"
    status = 422


def check(text: str) -> None:
    """Refuse `text` with Blocked if it carries a way to get in touch outside the platform."""
    reason = blocked_reason(text)
    if reason is not None:
        raise Blocked(explain(reason), reason=reason)


def blocked_reason(text: str) -> str | None:
    """A code saying why `text` may not be sent, or None."""
    if _EMAIL.search(text):
        return "email"
    if _LINK.search(text):
        return "link"
    if _PHONE.search(text):
        return "phone"
    if _HANDLE.search(text):
        return "handle"
    return None


def explain(reason: str) -> str:
    return {
        "email": _("Messages with e-mail addresses are not sent. Keep contact here on Lektiecafé."),
        "link": _("Messages with links are not sent. Describe what you mean in words instead."),
        "phone": _("Messages with phone numbers are not sent. Keep contact here on Lektiecafé."),
        "handle": _(
            "Messages with social media names are not sent. Keep contact here on Lektiecafé."
        ),
    }[reason]
