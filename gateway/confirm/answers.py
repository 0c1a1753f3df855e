"""What a sender is told after acting on a confirmation, by page or by reply notice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    code: str
    title: str
    text: str
    http_status: int = 200

    @property
    def changed(self) -> bool:
        """Whether anything happened to the message."""
        return self.code in ("sent", "cancelled", "kept")


ANSWERS = {
    a.code: a
    for a in (
        Answer(
            "sent",
            "Your message is being sent",
            "Thank you. Your message is on its way, and your justification has been recorded.",
        ),
        Answer(
            "cancelled", "Your message was cancelled", "Your message has been cancelled and will not be sent."
        ),
        Answer(
            "kept",
            "Your message was cancelled",
            "Your message will not be sent. A copy has been kept for security staff, "
            "as agency policy requires.",
        ),
        Answer(
            "invalid",
            "This confirmation is not valid",
            "This confirmation link or reply address is not valid. Nothing has been changed. "
            "Please use the link in the most recent notice you received.",
            404,
        ),
        Answer(
            "used",
            "This message has already been dealt with",
            "This confirmation has already been used, or the message was dealt with by security staff. "
            "Nothing has been changed.",
            409,
        ),
        Answer(
            "expired",
            "This confirmation has expired",
            "The time to confirm this message has passed. Nothing has been changed by this request.",
            410,
        ),
        Answer(
            "not_sender",
            "This confirmation is not valid",
            "Only the person who sent the message can confirm or cancel it. Nothing has been changed.",
            403,
        ),
        Answer(
            "bad_form",
            "The form could not be accepted",
            "The form was not valid (it may be out of date). Nothing has been changed. "
            "Please open the link again.",
            403,
        ),
        Answer(
            "unclear",
            "Your reply was not understood",
            "Nothing has been changed. Reply with SEND on the first line followed by your business "
            "justification, or with CANCEL on the first line.",
            400,
        ),
        Answer(
            "too_short",
            "A business justification is needed",
            "Nothing has been changed. Please give a business justification for sending this message.",
            400,
        ),
    )
}
