"""Sending JSON messages to the stack's SQS queues (named by their ``jobs.QUEUES`` row).

Bodies are JSON objects rendered with ``ledgerline.jsonutil`` (Decimal → string, never a
float). A batch send reports per message what was sent and what failed, so a caller
(the outbox relay) marks only what SQS accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledgerline.aws import clients, resources
from ledgerline.jsonutil import dumps

MAX_BATCH_ENTRIES = 10  # SQS SendMessageBatch limit
MAX_PAYLOAD_BYTES = 256 * 1024  # per message and per batch request (the classic SQS limit)


class MessageTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Outgoing:
    """One message: ``id`` is unique within a call and names it in the result."""

    id: str
    body: Mapping[str, Any]
    attributes: Mapping[str, str] = field(default_factory=dict)  # string message attributes


@dataclass
class BatchResult:
    sent: dict[str, str] = field(default_factory=dict)  # Outgoing.id → SQS MessageId
    failed: dict[str, str] = field(default_factory=dict)  # Outgoing.id → reason


def encode(body: Mapping[str, Any]) -> str:
    text = dumps(dict(body))
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise MessageTooLarge(f"message body is {size} bytes; SQS allows {MAX_PAYLOAD_BYTES}")
    return text


def _attributes(attributes: Mapping[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"DataType": "String", "StringValue": str(v)} for k, v in attributes.items()}


def send(queue: str, body: Mapping[str, Any], *, attributes: Mapping[str, str] | None = None) -> str:
    """Send one message to the queue of the QUEUES row ``queue``; return its MessageId."""
    kwargs: dict[str, Any] = {"QueueUrl": resources.queue_url(queue), "MessageBody": encode(body)}
    if attributes:
        kwargs["MessageAttributes"] = _attributes(attributes)
    return str(clients.client("sqs").send_message(**kwargs)["MessageId"])


def send_batch(queue: str, messages: Sequence[Outgoing | Mapping[str, Any]]) -> BatchResult:
    """Send many messages in as few requests as SQS allows; never raises for a send failure.

    Plain mappings are given ids "0", "1", ... by position. A request that fails as a
    whole (network, unknown queue) marks its messages failed: SQS may still have taken
    some, so a retry can duplicate them (at-least-once).
    """
    outgoing = [m if isinstance(m, Outgoing) else Outgoing(str(i), m) for i, m in enumerate(messages)]
    if len({m.id for m in outgoing}) != len(outgoing):
        raise ValueError("message ids must be unique within one send_batch call")
    result = BatchResult()
    encoded: list[tuple[Outgoing, str]] = []
    for m in outgoing:
        try:
            encoded.append((m, encode(m.body)))
        except (MessageTooLarge, TypeError, ValueError) as exc:
            result.failed[m.id] = f"{type(exc).__name__}: {exc}"
    if not encoded:
        return result
    try:
        url = resources.queue_url(queue)
    except Exception as exc:  # botocore errors, unknown queue: every message failed
        result.failed.update({m.id: f"queue {queue}: {exc}" for m, _ in encoded})
        return result
    sqs = clients.client("sqs")
    for chunk in _chunks(encoded):
        entries: list[dict[str, Any]] = [{"Id": _entry_id(i), "MessageBody": text} for i, (_, text) in enumerate(chunk)]
        for entry, (m, _) in zip(entries, chunk, strict=True):
            if m.attributes:
                entry["MessageAttributes"] = _attributes(m.attributes)
        by_entry = {e["Id"]: m for e, (m, _) in zip(entries, chunk, strict=True)}
        try:
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:
            result.failed.update({m.id: f"{type(exc).__name__}: {exc}" for m in by_entry.values()})
            continue
        for ok in response.get("Successful", []):
            result.sent[by_entry[ok["Id"]].id] = ok["MessageId"]
        for bad in response.get("Failed", []):
            result.failed[by_entry[bad["Id"]].id] = f"{bad.get('Code')}: {bad.get('Message', '')}".strip()
    return result


def _entry_id(i: int) -> str:
    # SQS entry ids allow only [A-Za-z0-9_-]; callers' ids are mapped, not trusted.
    return f"m{i}"


def _chunks(encoded: list[tuple[Outgoing, str]]) -> list[list[tuple[Outgoing, str]]]:
    chunks: list[list[tuple[Outgoing, str]]] = []
    current: list[tuple[Outgoing, str]] = []
    size = 0
    for item in encoded:
        n = len(item[1].encode()) + sum(len(k) + len(v) for k, v in item[0].attributes.items())
        if current and (len(current) == MAX_BATCH_ENTRIES or size + n > MAX_PAYLOAD_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += n
    if current:
        chunks.append(current)
    return chunks
