"""Confirmation by reply: the ``dlp-confirm+TOKEN@`` address, and what the sender wrote.

The first non-empty line of the reply is the command (``SEND`` or ``CANCEL``);
the lines after it, down to where the quoted notice starts, are the
justification.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage

from selectolax.lexbor import LexborHTMLParser as HTMLParser

LOCAL_PREFIX = "dlp-confirm+"
COMMANDS = {"send": "send", "cancel": "cancel"}
# Where a mail client starts quoting what is being replied to.
_QUOTE_START = re.compile(
    r"^(>|On .+ wrote:$|-{2,}\s*Original Message\s*-{2,}|_{5,}$|From: .+|Sent from my )", re.IGNORECASE
)


@dataclass(frozen=True)
class ReplyCommand:
    action: str  # "send", "cancel", or "" when not understood
    justification: str


def reply_address(token: str, gateway_address: str) -> str:
    domain = gateway_address.rpartition("@")[2] or "localhost"
    return f"{LOCAL_PREFIX}{token}@{domain}"


def token_of(address: str, gateway_address: str) -> str | None:
    """The token in a reply address for this gateway, or None if it is not one."""
    local, _, domain = address.strip("<>").rpartition("@")
    ours = gateway_address.rpartition("@")[2].lower()
    if domain.lower().rstrip(".") != ours or not local.lower().startswith(LOCAL_PREFIX):
        return None
    # A malformed token is still addressed to us: it is answered "not valid", never relayed.
    return local[len(LOCAL_PREFIX) :].lower()[:128]


def parse_reply(raw: bytes) -> ReplyCommand:
    """The command and justification the sender wrote above the quoted notice."""
    lines = [line.strip() for line in _reply_text(raw).splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        return ReplyCommand("", "")
    first, *rest = lines
    words = first.split(None, 1)
    action = COMMANDS.get(words[0].strip(".:!,").lower(), "") if words else ""
    if not action:
        return ReplyCommand("", "")
    body: list[str] = [words[1]] if len(words) > 1 else []
    for line in rest:
        if _QUOTE_START.match(line):
            break
        body.append(line)
    return ReplyCommand(action, " ".join(" ".join(body).split()))


def _reply_text(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):
        return ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        tree = HTMLParser(content)
        for quoted in tree.css("blockquote"):
            quoted.decompose()
        return tree.body.text(separator="\n") if tree.body else ""
    return content
