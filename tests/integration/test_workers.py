"""Local SQS workers: real batch events, partial batch responses, poison messages → DLQ."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid

import pytest

from ledgerline.local.workers import QueueWorker, failed_ids


@pytest.fixture
def test_queue(aws_endpoint):
    """A queue of its own with a 1 s visibility timeout and a DLQ after 2 receives."""
    from ledgerline.aws import clients

    sqs = clients.client("sqs")
    name = f"test-workers-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    yield sqs, url, dlq_url
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dlq_url)


class Consumer:
    """Fails every record whose body says poison; records what it saw."""

    def __init__(self, mode="partial"):
        self.mode = mode
        self.events = []
        self.processed = []
        self.lock = threading.Lock()

    def __call__(self, event, context):
        with self.lock:
            self.events.append(event)
        failures = []
        for r in event["Records"]:
            body = json.loads(r["body"])
            if body.get("poison"):
                failures.append({"itemIdentifier": r["messageId"]})
            else:
                with self.lock:
                    self.processed.append(body["n"])
        if self.mode == "raise" and failures:
            raise RuntimeError("consumer crashed")
        if self.mode == "unknown-id" and failures:
            return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
        return {"batchItemFailures": failures}


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _drain(sqs, url):
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_a_poison_message_ends_in_the_dlq_and_the_rest_are_delivered_once(test_queue):
    sqs, url, dlq_url = test_queue
    # Given five good messages and one poison message
    for n in range(5):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"n": n}),
            MessageAttributes={"outbox_id": {"DataType": "String", "StringValue": str(n)}},
        )
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"poison": True}))
    consumer = Consumer()
    worker = QueueWorker("test", url, lambda: consumer, batch_size=10, wait_seconds=1).start()
    dead = []
    try:
        # When the worker has polled long enough for the poison to be received twice
        assert _wait(lambda: bool(dead.extend(_drain(sqs, dlq_url)) or dead)), "poison never reached the DLQ"
    finally:
        worker.stop_event.set()
        assert worker.join(5)
    # Then the poison is in the DLQ and every good message was processed exactly once
    assert dead == [{"poison": True}]
    assert sorted(consumer.processed) == [0, 1, 2, 3, 4]
    assert _drain(sqs, url) == []
    poison_receipts = [r for e in consumer.events for r in e["Records"] if json.loads(r["body"]).get("poison")]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in poison_receipts] == ["1", "2"]


def test_the_event_is_what_lambda_sends_for_an_sqs_batch(test_queue):
    sqs, url, _ = test_queue
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"n": 7}),
        MessageAttributes={"outbox_id": {"DataType": "String", "StringValue": "42"}},
    )
    consumer = Consumer()
    worker = QueueWorker("test", url, lambda: consumer, wait_seconds=1)
    assert worker.poll_once() == 1
    [event] = consumer.events
    [r] = event["Records"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert r["eventSource"] == "aws:sqs"
    assert r["eventSourceARN"] == arn
    assert r["awsRegion"] == "eu-west-1"
    assert r["messageId"] and r["receiptHandle"]
    assert r["body"] == json.dumps({"n": 7})
    assert r["md5OfBody"] == hashlib.md5(r["body"].encode()).hexdigest()  # noqa: S324 - SQS's own checksum
    assert r["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(r["attributes"])
    assert r["messageAttributes"]["outbox_id"] == {
        "stringValue": "42",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert _drain(sqs, url) == []  # it was deleted


@pytest.mark.parametrize("mode", ["raise", "unknown-id"])
def test_a_consumer_that_fails_the_whole_batch_gets_the_whole_batch_again(test_queue, mode):
    sqs, url, _ = test_queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"poison": True}))
    consumer = Consumer(mode)
    worker = QueueWorker("test", url, lambda: consumer, wait_seconds=1)
    assert _wait(lambda: worker.poll_once() and len(consumer.processed) >= 1)
    # Nothing was deleted: once visible again, both messages come back
    time.sleep(1.1)
    assert sorted(json.dumps(b, sort_keys=True) for b in _drain(sqs, url)) == sorted(
        [json.dumps({"n": 1}), json.dumps({"poison": True})]
    )


def test_partial_batch_responses_are_read_as_lambda_reads_them():
    ids = {"a", "b"}
    assert failed_ids(None, ids) == set()
    assert failed_ids({}, ids) == set()
    assert failed_ids({"batchItemFailures": []}, ids) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, ids) == {"a"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "z"}]}, ids) is None
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) is None
    assert failed_ids({"batchItemFailures": ["a"]}, ids) is None


def test_a_worker_without_its_consumer_module_consumes_nothing(test_queue):
    sqs, url, _ = test_queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))

    def missing():
        raise ImportError("No module named 'functions.jobs.not_there'")

    worker = QueueWorker("test", url, missing, wait_seconds=1).start()
    time.sleep(0.5)
    worker.stop_event.set()
    assert worker.join(3)
    assert worker.batches == 0
    assert _drain(sqs, url) == [{"n": 1}]


def test_stop_returns_within_about_a_second(test_queue):
    _, url, _ = test_queue
    worker = QueueWorker("test", url, lambda: Consumer(), wait_seconds=1).start()
    time.sleep(0.3)
    began = time.monotonic()
    worker.stop_event.set()
    assert worker.join(5)
    assert time.monotonic() - began < 2.5
