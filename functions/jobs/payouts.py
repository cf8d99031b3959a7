"""SQS consumer (gateway-payouts): pay each approved withdrawal out through its gateway.

A record whose gateway is unavailable fails alone (partial batch failure) and comes back
after the visibility timeout, then to the DLQ; the gateway is idempotent on the
withdrawal's id, so a retried or duplicated message never pays twice."""

from collections.abc import Callable
from typing import Any
from uuid import UUID

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ledgerline.jsonutil import loads
from ledgerline.observability import logger
from ledgerline.payments import bulk_payouts, withdrawals


def pay_out(record: SQSRecord) -> str:
    """One message: a withdrawal's payout, or a bulk payout's items (issue 19: through the
    gateway's bulk transfer API); an exception leaves the message for a retry."""
    payload = loads(record.body)
    send: Callable[[], Any]
    if "bulk_payout_id" in payload:
        bulk_id = UUID(str(payload["bulk_payout_id"]))
        what, where, send = "bulk payout", {"bulk_payout_id": str(bulk_id)}, lambda: bulk_payouts.send_bulk(bulk_id)
    else:
        withdrawal_id = UUID(str(payload["withdrawal_id"]))
        what, where, send = (
            "payout",
            {"withdrawal_id": str(withdrawal_id)},
            lambda: withdrawals.send_payout(withdrawal_id),
        )
    try:
        outcome = send()
    except Exception as exc:
        logger.warning(
            f"{what} not sent; the message stays for a retry",
            extra={"message_id": record.message_id, **where, "error": type(exc).__name__},
        )
        raise
    logger.info(what, extra={**where, "outcome": outcome})
    return str(outcome)


def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    # A processor per invocation: it keeps per-batch state.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=pay_out, processor=processor, context=context)
