"""Sending e-mail through Amazon SES (API v2).

The sender address is the verified SES identity the CDK app configures
(LEDGERLINE_EMAIL_FROM); without it nothing can be sent, and that is an error, never a
silent skip.
"""

from __future__ import annotations

import os

from ledgerline.aws import clients

FROM_ENV = "LEDGERLINE_EMAIL_FROM"


class EmailNotConfigured(RuntimeError):
    pass


def from_address() -> str:
    sender = os.environ.get(FROM_ENV)
    if not sender:
        raise EmailNotConfigured(f"{FROM_ENV} is not set: it must name the verified SES identity that sends e-mail")
    return sender


def send_email(to: str, subject: str, text: str, *, sender: str | None = None) -> str:
    """Send a plain-text e-mail; return SES's message id."""
    response = clients.client("sesv2").send_email(
        FromEmailAddress=sender or from_address(),
        Destination={"ToAddresses": [to]},
        Content={
            "Simple": {
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
            }
        },
    )
    return str(response["MessageId"])
