"""Notices to senders: Jinja2 templates (plain text and HTML) made into a signed message.

An agency overrides any template by putting a file of the same name in
``confirm.template_dir``.  Templates run sandboxed, and only ever see the
summary (masked excerpts), never the original message, which is not attached.
"""

from __future__ import annotations

import email.policy
import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from gateway.confirm.tokens import sign_notice
from gateway.store import new_id

SHIPPED = Path(__file__).parent / "templates"
KINDS = ("warn", "notify", "expired", "result")


class Templates:
    """The shipped templates, each overridable by a file of the same name in ``override_dir``."""

    def __init__(self, override_dir: str = ""):
        loaders = [FileSystemLoader(override_dir)] if override_dir else []
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader([*loaders, FileSystemLoader(SHIPPED)]),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)


@dataclass(frozen=True)
class NoticeWriter:
    """Makes notice messages from the gateway's own address."""

    templates: Templates
    gateway_address: str
    key: bytes

    def compose(
        self,
        kind: str,
        to: str,
        context: dict[str, Any],
        reply_to: str | None = None,
        in_reply_to: str = "",
    ) -> bytes:
        """The notice of ``kind`` as bytes ready for the outbox (signed as ours)."""
        context = {**context, "gateway_address": self.gateway_address}
        subject = " ".join(self.templates.render(f"notice_{kind}_subject.txt", **context).split())
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = email.utils.formataddr(("Email protection", self.gateway_address))
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(localtime=False)
        domain = self.gateway_address.rpartition("@")[2] or "localhost"
        notice_id = new_id()
        msg["Message-ID"] = f"<notice.{notice_id}@{domain}>"
        if reply_to:
            msg["Reply-To"] = reply_to
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = in_reply_to
        # RFC 3834: an automatic reply; and Exchange's own switch against out-of-office answers.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(self.templates.render(f"notice_{kind}.txt", **context), cte="quoted-printable")
        msg.add_alternative(
            self.templates.render(f"notice_{kind}.html", **context), subtype="html", cte="quoted-printable"
        )
        return sign_notice(self.key, notice_id, msg.as_bytes())
