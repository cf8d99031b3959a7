"""SQS consumer (gateway-payouts): pay each approved withdrawal out through its gateway.

A record whose gateway is unavailable fails alone (partial batch failure) and comes back
after the visibility timeout, then to the DLQ; the gateway is idempotent on the
withdrawal's id, so a retried or duplicated message never pays twice."""

from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ledgerline.jsonutil import loads
from ledgerline.observability import logger
from ledgerline.payments import bulk_payouts, withdrawals


def pay_out(record: SQSRecord) -> str:
    payload = loads(record.body)
    if "bulk_payout_id" in payload:  # issue 19: its items through the gateway's bulk transfer API
        return pay_out_bulk(record, UUID(str(payload["bulk_payout_id"])))
    withdrawal_id = UUID(str(payload["withdrawal_id"]))
    try:
        outcome = withdrawals.send_payout(withdrawal_id)
    except Exception as exc:
        logger.warning(
            "payout not sent; the message stays for a retry",
            extra={"message_id": record.message_id, "withdrawal_id": str(withdrawal_id), "error": type(exc).__name__},
        )
        raise
    logger.info("payout", extra={"withdrawal_id": str(withdrawal_id), "outcome": outcome})
    return outcome


def pay_out_bulk(record: SQSRecord, bulk_id: UUID) -> str:
    try:
        sent = bulk_payouts.send_bulk(bulk_id)
    except Exception as exc:
        logger.warning(
            "bulk payout not sent; the message stays for a retry",
            extra={"message_id": record.message_id, "bulk_payout_id": str(bulk_id), "error": type(exc).__name__},
        )
        raise
    logger.info("bulk payout", extra={"bulk_payout_id": str(bulk_id), "outcomes": sent})
    return "sent"


def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    # A processor per invocation: it keeps per-batch state.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=pay_out, processor=processor, context=context)
