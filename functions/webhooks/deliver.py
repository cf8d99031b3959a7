"""SQS consumer (merchant-webhooks): one signed POST per message (``delivery_id``).

A failed attempt stays in the queue and comes back after its backoff (the message's
visibility is set to it: 30 s, 2 min, 8 min …); after the last attempt the delivery is
dead in the delivery log and the message goes on to the DLQ when SQS's receive count
runs out. Other messages of the batch are unaffected (partial batch response).
"""

from typing import Any
from uuid import UUID

from ledgerline.aws import clients, resources
from ledgerline.jsonutil import loads
from ledgerline.observability import logger
from ledgerline.webhooks import delivery
from ledgerline.webhooks.events import QUEUE


def _later(receipt_handle: str, seconds: int) -> None:
    """Best effort: without it the message returns after the queue's visibility timeout."""
    try:
        clients.client("sqs").change_message_visibility(
            QueueUrl=resources.queue_url(QUEUE), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
    except Exception as exc:
        logger.warning("webhook retry delay not set", extra={"error": f"{type(exc).__name__}: {exc}"})


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        message_id = record["messageId"]
        try:
            delivery_id = UUID(str(loads(record["body"])["delivery_id"]))
        except (ValueError, KeyError, TypeError):
            logger.error("merchant webhook message without a delivery id", extra={"message_id": message_id})
            failures.append({"itemIdentifier": message_id})  # poison: to the DLQ after its receives
            continue
        try:
            step = delivery.attempt(delivery_id)
        except Exception:
            logger.exception("merchant webhook attempt failed", extra={"delivery_id": str(delivery_id)})
            failures.append({"itemIdentifier": message_id})
            continue
        logger.info("merchant webhook attempt", extra={"delivery_id": str(delivery_id), "outcome": step.outcome})
        if not step.done:
            _later(record["receiptHandle"], step.delay)
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
