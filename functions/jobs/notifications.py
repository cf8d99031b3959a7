"""SQS consumer (notifications): deliver each event; a failed record is retried, then DLQ'd."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ledgerline import notifications
from ledgerline.db import transaction
from ledgerline.jsonutil import loads
from ledgerline.observability import logger


def _email_of(user_id: str) -> str | None:
    return transaction(lambda cur: notifications.email_of(cur, user_id))


def consume(
    event: dict[str, Any], context: Any, provider: notifications.Provider | None = None
) -> PartialItemFailureResponse:
    provider = provider or notifications.default_provider()

    def deliver(record: SQSRecord) -> str | None:
        outbox_id = (record.raw_event.get("messageAttributes", {}).get("outbox_id") or {}).get("stringValue")
        try:
            event = notifications.prepare(loads(record.body), run=transaction)
            if event is None:
                logger.info("notification not needed", extra={"message_id": record.message_id, "outbox_id": outbox_id})
                return None
            message = notifications.render(event, email_of=_email_of)
            delivered = provider.deliver(message, message_id=record.message_id, outbox_id=outbox_id)
        except Exception as exc:
            # Never the payload: it may carry a reset token.
            logger.error(
                "notification not delivered",
                extra={
                    "message_id": record.message_id,
                    "outbox_id": outbox_id,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            raise
        logger.info(
            "notification delivered",
            extra={
                "message_id": record.message_id,
                "outbox_id": outbox_id,
                "type": message.type,
                "provider": provider.name,
            },
        )
        return delivered

    # A processor per invocation: it keeps per-batch state.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)


def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return consume(event, context)
