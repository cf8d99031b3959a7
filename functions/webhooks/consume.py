"""SQS consumer (gateway-webhooks): act on each verified webhook once
(``ledgerline.payments.confirm``). A record that raises (a gateway outage during the
re-query, a payment not settled yet, an unreadable message) is reported as failed, alone:
SQS gives it again after its visibility timeout, and to the DLQ after its receives."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ledgerline.observability import logger
from ledgerline.payments import confirm


def _process(record: SQSRecord) -> str:
    receives = record.attributes.approximate_receive_count
    try:
        outcome = confirm.process(record.body, message_id=record.message_id)
    except Exception as exc:
        # Never the body: it carries the customer's details.
        logger.warning(
            "gateway webhook not processed; it will be retried",
            extra={"message_id": record.message_id, "receives": receives, "error": f"{type(exc).__name__}: {exc}"},
        )
        raise
    logger.info("gateway webhook processed", extra={"message_id": record.message_id, "outcome": outcome})
    return outcome


def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    # A processor per invocation: it keeps per-batch state.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=_process, processor=processor, context=context)
