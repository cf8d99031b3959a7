"""The local stand-in for Lambda's SQS event source mappings.

For every ``ledgerline.jobs.QUEUES`` row that is not ``planned``, a thread long-polls the
queue and invokes the consumer module's ``handler(event, context)`` with the batch event
Lambda would send, honouring partial batch responses (ReportBatchItemFailures) as
Lambda does:

- the handler returns ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}``:
  every other message is deleted; the failed ones become visible again when their
  visibility timeout ends, and after ``maxReceiveCount`` receives SQS moves them to the
  DLQ (the queue's redrive policy, created by ``ledgerline.local.aws.bootstrap``);
- the handler raises, or names an identifier that is not in the batch: nothing is
  deleted (the whole batch is retried);
- anything else (``None``, ``{}``, an empty list): the whole batch succeeded.

A worker whose consumer module cannot be imported receives nothing (messages wait in the
queue rather than being driven into the DLQ) and retries the import now and then.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from ledgerline.jobs import QUEUES, Queue
from ledgerline.local.gateway import LambdaContext

logger = logging.getLogger("ledgerline.workers")

WAIT_SECONDS = 1  # long-poll wait: short, so stop() returns within about a second
IMPORT_RETRY_SECONDS = 5.0
ERROR_BACKOFF_SECONDS = 1.0

Handler = Callable[[dict[str, Any], Any], Any]


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attribute → the camelCase shape Lambda puts in the event."""
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return out


def record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One received SQS message as a Lambda event record."""
    out: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {k: _lambda_attribute(v) for k, v in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        out["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return out


def failed_ids(result: Any, batch_ids: set[str]) -> set[str] | None:
    """The message ids a partial batch response names; None means the whole batch failed."""
    if not isinstance(result, dict):
        return set()
    failures = result.get("batchItemFailures")
    if not failures:
        return set()
    named = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            # Lambda treats a malformed or unknown identifier as a failure of the batch.
            return None
        named.add(identifier)
    return named


class QueueWorker:
    """Polls one queue and feeds its consumer until ``stop`` is set."""

    def __init__(
        self,
        name: str,
        queue_url: str,
        load_handler: Callable[[], Handler],
        *,
        batch_size: int = 10,
        timeout_seconds: int = 30,
        wait_seconds: int = WAIT_SECONDS,
        stop: threading.Event | None = None,
        prefix: str = "ledgerline",
    ) -> None:
        self.name = name
        self.queue_url = queue_url
        self.load_handler = load_handler
        self.batch_size = max(1, min(batch_size, 10))  # one ReceiveMessage returns at most 10
        self.timeout_seconds = timeout_seconds
        self.wait_seconds = wait_seconds
        self.stop_event = stop or threading.Event()
        self.function_name = f"{prefix}-{name}-consumer"
        self.batches = 0
        self.deleted = 0
        self.failed = 0
        self._handler: Handler | None = None
        self._thread: threading.Thread | None = None
        self._queue_arn: str | None = None

    def start(self) -> QueueWorker:
        self._thread = threading.Thread(target=self._loop, name=f"sqs-{self.name}", daemon=True)
        self._thread.start()
        return self

    def preload(self) -> None:
        """Import the consumer now (in the calling thread); ImportError if it cannot be."""
        self._handler = self.load_handler()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _sqs(self) -> Any:
        from ledgerline.aws import clients

        return clients.client("sqs")

    def _loop(self) -> None:
        import_error_logged = False
        try:
            while not self.stop_event.is_set():
                if self._handler is None:
                    try:
                        self._handler = self.load_handler()
                    except ImportError as exc:
                        if not import_error_logged:
                            logger.error("queue %s: consumer cannot be imported (%s); not polling", self.name, exc)
                            import_error_logged = True
                        self.stop_event.wait(IMPORT_RETRY_SECONDS)
                        continue
                try:
                    self.poll_once()
                except Exception:
                    logger.exception("queue %s: polling failed", self.name)
                    self.stop_event.wait(ERROR_BACKOFF_SECONDS)
        finally:
            _close_thread_connection()

    def poll_once(self) -> int:
        """Receive one batch and process it; return how many messages it had."""
        sqs = self._sqs()
        response = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if messages:
            self.process(messages)
        return len(messages)

    def process(self, messages: list[dict[str, Any]]) -> None:
        from ledgerline.config import settings

        if self._handler is None:
            self._handler = self.load_handler()
        region = settings().aws_region
        event = {"Records": [record(m, queue_arn=self.queue_arn(), region=region) for m in messages]}
        context = LambdaContext(
            function_name=self.function_name, aws_request_id=str(uuid.uuid4()), timeout_seconds=self.timeout_seconds
        )
        batch_ids = {m["MessageId"] for m in messages}
        self.batches += 1
        started = time.monotonic()
        try:
            result = self._handler(event, context)
        except Exception:
            logger.exception("queue %s: consumer raised; the batch of %d will be retried", self.name, len(messages))
            failures: set[str] | None = None
        else:
            failures = failed_ids(result, batch_ids)
            if failures is None:
                logger.error(
                    "queue %s: partial batch response names unknown ids; the whole batch will be retried", self.name
                )
        elapsed = time.monotonic() - started
        if elapsed > self.timeout_seconds:
            logger.warning(
                "queue %s: consumer ran %.1fs, over its %ss Lambda timeout", self.name, elapsed, self.timeout_seconds
            )
        if failures is None:
            self.failed += len(messages)
            return
        self.failed += len(failures)
        done = [m for m in messages if m["MessageId"] not in failures]
        if done:
            self._delete(done)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        entries = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        response = self._sqs().delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self.deleted += len(response.get("Successful", []))
        for bad in response.get("Failed", []):
            # The message will be received again: consumers tolerate duplicates.
            logger.warning("queue %s: delete failed: %s %s", self.name, bad.get("Code"), bad.get("Message"))

    def queue_arn(self) -> str:
        if self._queue_arn is None:
            attrs = self._sqs().get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            self._queue_arn = attrs["Attributes"]["QueueArn"]
        return self._queue_arn


def _close_thread_connection() -> None:
    from ledgerline.db.connection import discard_connection

    discard_connection()


class WorkerPool:
    """One worker per queue, stopped together."""

    def __init__(self, workers: list[QueueWorker], stop: threading.Event) -> None:
        self.workers = workers
        self.stop_event = stop

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            if not worker.join(max(0.0, deadline - time.monotonic())):
                logger.warning("queue %s: worker still busy at stop; abandoned", worker.name)


def _consumer_loader(queue: Queue) -> Callable[[], Handler]:
    def load() -> Handler:
        return importlib.import_module(queue.consumer).handler

    return load


def start(queues: Iterable[Queue] | None = None, *, wait_seconds: int = WAIT_SECONDS) -> WorkerPool:
    """Start a worker for every non-planned QUEUES row (what ``dev up`` calls)."""
    from ledgerline.aws import resources
    from ledgerline.config import settings

    prefix = settings().resource_prefix
    stop = threading.Event()
    workers = []
    for q in QUEUES if queues is None else queues:
        if q.planned:
            continue
        loader = _consumer_loader(q)
        worker = QueueWorker(
            q.name,
            resources.queue_url(q.name),
            loader,
            batch_size=q.batch_size,
            timeout_seconds=q.consumer_timeout_seconds,
            wait_seconds=wait_seconds,
            stop=stop,
            prefix=prefix,
        )
        # Import in this thread, before any worker runs: concurrent first imports of
        # packages with import cycles (powertools) can see half-initialised modules.
        with contextlib.suppress(ImportError):
            worker.preload()
        workers.append(worker.start())
        logger.info("polling %s → %s", q.name, q.consumer)
    return WorkerPool(workers, stop)


def deliver_pending(queue: str, *, max_batches: int = 100) -> int:
    """Feed a QUEUES row's consumer everything its queue holds now, in this thread.

    For tests and scripts that run without the worker threads: returns the number of
    messages handed to the consumer (failed ones stay in the queue, as with Lambda).
    """
    from ledgerline.aws import resources
    from ledgerline.jobs import queue as queue_row

    row = queue_row(queue)
    worker = QueueWorker(
        row.name,
        resources.queue_url(row.name),
        _consumer_loader(row),
        batch_size=row.batch_size,
        timeout_seconds=row.consumer_timeout_seconds,
        wait_seconds=1,  # an empty long poll, not a sampled short poll, ends the drain
    )
    total = 0
    for _ in range(max_batches):
        received = worker.poll_once()
        if not received:
            break
        total += received
    return total
