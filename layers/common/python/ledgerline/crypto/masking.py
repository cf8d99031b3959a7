"""Masking: what a person or a log may see of a sensitive value.

``mask`` gives the display form of an identifier (``****6789``), ``mask_email`` that of an
e-mail address (``j****@example.com``). The log filter applies the same rules to every log
record: a field whose name marks it sensitive is replaced (secrets entirely, identifiers
down to their last digits, e-mail addresses down to their first letter and domain), and
free text is scanned for values that look like card, account or phone numbers and for
tokens. It errs towards hiding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from uuid import UUID

REDACTED = "****"

# A field is sensitive when its name, split into words (snake, kebab or camel case, plural
# folded), contains one of these words or word sequences.
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "otp",
        "totp",
        "pin",
        "cvv",
        "cvv2",
        "cvc",
        "authorization",
        "cookie",
        "credential",
        "plaintext",
    }
)
SECRET_PHRASES = (
    ("api", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("access", "key"),
    ("signing", "key"),
    ("data", "key"),
    ("master", "key"),
    ("index", "key"),
    ("recovery", "code"),
    ("backup", "code"),
)
IDENTIFIER_WORDS = frozenset({"phone", "msisdn", "mobile", "iban", "pan", "ssn", "bvn", "nin", "nuban", "passport"})
IDENTIFIER_PHRASES = (
    ("account", "number"),
    ("account", "no"),
    ("acct", "no"),
    ("acct", "number"),
    ("government", "id"),
    ("national", "id"),
    ("tax", "id"),
    ("id", "number"),
    ("card", "number"),
    ("routing", "number"),
    ("sort", "code"),
    ("date", "of", "birth"),
)

# Personal data, not a credential: the domain stays visible ("which provider bounces?").
EMAIL_WORDS = frozenset({"email", "mail"})  # "e-mail" and "e_mail" split into "e", "mail"

SECRET = "secret"  # noqa: S105 - a category name, not a password
IDENTIFIER = "identifier"
EMAIL = "email"


def mask(value: str | None, visible: int = 4) -> str | None:
    """``"0123456789"`` → ``"****6789"``: the last ``visible`` letters or digits, never half or more."""
    if value is None:
        return None
    compact = "".join(ch for ch in str(value) if ch.isalnum())
    if str(value).startswith(REDACTED) and len(compact) <= visible:
        return str(value)  # already masked: masking twice must not hide more
    shown = min(visible, len(compact) // 2)
    return REDACTED + (compact[-shown:] if shown > 0 else "")


_ADDRESS = re.compile(r"([^\s@<>]+)@([\w-]+(?:\.[\w-]+)+)")


def mask_email(value: str | None) -> str | None:
    """``"jo@example.com"`` → ``"j****@example.com"``; anything that is not an address → ``"****"``."""
    if value is None:
        return None
    address = _ADDRESS.fullmatch(str(value).strip())
    if address is None:
        return REDACTED
    return address[1][0] + REDACTED + "@" + address[2]


def _words(key: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


def classify(key: Any) -> str | None:
    """SECRET, IDENTIFIER, EMAIL or None for a field name."""
    if not isinstance(key, str) or not key:
        return None
    words = _words(key)
    if SECRET_WORDS.intersection(words) or any(_contains(words, p) for p in SECRET_PHRASES):
        return SECRET
    if IDENTIFIER_WORDS.intersection(words) or any(_contains(words, p) for p in IDENTIFIER_PHRASES):
        return IDENTIFIER
    if EMAIL_WORDS.intersection(words):
        return EMAIL
    return None


# ------------------------------------------------------------------------ free text

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_TIMESTAMP = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_DECIMAL = r"\d+\.\d+"
# Eight or more digits, optionally grouped by single spaces or dashes: card, account, phone
# and id numbers. Not inside a word, a UUID, a timestamp or a decimal amount (skipped first).
_NUMBER = r"(?<![\w.\-])\+?\d(?:[ \-]?\d){7,}(?![\w.])"
_JWT = r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*"
_BEARER = r"(?i:bearer|basic)\s+[\w\-.~+/]+=*"
_KEY_VALUE = (
    r"(?P<kq>[\"']?)(?P<key>[A-Za-z_][\w\-]*)(?P=kq)(?P<sep>\s*[=:]\s*)"
    # A value runs to the next space, quote or separator; a number also takes the
    # space-separated digit groups after it ("+234 803 123 4567"), other values do not
    # ("email=j****@example.com 200" keeps the 200).
    r"(?P<vq>[\"']?)(?P<value>\+?\d+(?: \d+)*(?=[\s\"',;&}\]]|$)|[^\s\"',;&}\]]+)"
)
_TEXT = re.compile(
    rf"(?P<skip>{_UUID}|{_TIMESTAMP}|{_DECIMAL})|(?P<jwt>{_JWT})|(?P<bearer>{_BEARER})|(?P<kv>{_KEY_VALUE})|(?P<num>{_NUMBER})"
)


def _masked(value: str, kind: str) -> str:
    if kind == IDENTIFIER:
        return str(mask(value))
    if kind == EMAIL:
        return str(mask_email(value))
    return REDACTED


def _replace(m: re.Match[str]) -> str:
    if m.group("skip"):
        return m.group(0)
    if m.group("jwt"):
        return REDACTED
    if m.group("bearer"):
        return m.group(0).split(None, 1)[0] + " " + REDACTED
    if m.group("kv"):
        kind = classify(m.group("key"))
        if kind is None:
            # Not a sensitive name: still scan the value for numbers.
            head = m.group(0)[: m.start("value") - m.start(0)]
            return head + scrub_text(m.group("value"))
        return m.group(0)[: m.start("value") - m.start(0)] + _masked(m.group("value"), kind)
    return str(mask(m.group("num")))


def scrub_text(text: str) -> str:
    """``text`` with numbers, tokens and ``name=value`` pairs of sensitive names masked."""
    return _TEXT.sub(_replace, text)


# ------------------------------------------------------------------------ structures

_MAX_DEPTH = 16


def scrub(value: Any, key: Any = None, *, _kind: str | None = None, _depth: int = 0) -> Any:
    """A copy of ``value`` (dicts, lists, text) with every sensitive part masked."""
    kind = _kind or classify(key)
    if value is None or isinstance(value, bool):
        return value
    if _depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub(v, k, _kind=kind, _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v, key, _kind=kind, _depth=_depth + 1) for v in value]
    if kind is not None:
        return _masked(str(value), kind)
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (int, float, Decimal, UUID)):
        return value
    # Exceptions and other objects would be printed with str(): scan that text.
    return scrub_text(str(value))


# ------------------------------------------------------------------------ logging

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_plain_formatter = logging.Formatter()


class SensitiveDataFilter(logging.Filter):
    """Masks a record's message, its extra fields and its exception text in place.

    It never drops a record: if masking itself fails, the message is withheld instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, (dict, list)):
                record.msg = scrub(record.msg)
            else:
                record.msg = scrub_text(record.getMessage())
                record.args = None
            for name, value in list(vars(record).items()):
                if name not in _STANDARD_ATTRS:
                    setattr(record, name, scrub(value, name))
            if record.exc_info and not record.exc_text:
                # Standard formatters print exc_text when set; powertools' JSON output is
                # covered by the serializer hook of ``install``.
                record.exc_text = scrub_text(_plain_formatter.formatException(record.exc_info))
        except Exception:  # a log line must never be lost to, or leak through, a bug here
            record.msg = "log message withheld: masking failed"
            record.args = None
        return True


def _handlers(logger: Any) -> Iterable[logging.Handler]:
    handlers = list(getattr(logger, "handlers", []) or [])
    extra = getattr(logger, "logger_handler", None)
    if extra is not None and extra not in handlers:
        handlers.append(extra)
    return handlers


def install(logger: Any) -> None:
    """Make ``logger`` (a powertools Logger or a logging.Logger) print masked records only.

    Adds the filter to its handlers (so records of child loggers are masked too) and, for
    powertools' JSON formatter, masks the final document, which also holds keys appended
    with ``append_keys`` and the exception text. Installing twice changes nothing.
    """
    for handler in _handlers(logger):
        if not any(isinstance(f, SensitiveDataFilter) for f in handler.filters):
            handler.addFilter(SensitiveDataFilter())
        formatter = handler.formatter
        serializer = getattr(formatter, "json_serializer", None)
        if serializer is not None and not getattr(formatter, "_ledgerline_masked", False):

            def masked(log: Any, _serialize: Any = serializer) -> str:
                return _serialize(scrub(log))

            formatter.json_serializer = masked  # type: ignore[union-attr]
            formatter._ledgerline_masked = True  # type: ignore[union-attr]
