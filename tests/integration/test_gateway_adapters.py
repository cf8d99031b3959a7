"""Every gateway adapter method against the local fake gateway, over real HTTP, with the
keys the registry reads from the (moto) gateways secret: wire formats, minor and major
units, paging, timeouts and bounded retries, refusals, and every misbehaviour."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ledgerline.gateways.base import (
    GatewayRefused,
    GatewayUnavailable,
    PaymentStatus,
    PayoutStatus,
    SignatureInvalid,
)
from ledgerline.gateways.registry import UnknownProvider, gateway
from ledgerline.local.fake_gateway import account_name

PROVIDERS = ["paystack", "stripe", "flutterwave"]
CURRENCY = {"paystack": "NGN", "stripe": "USD", "flutterwave": "NGN"}


@pytest.fixture
def fake(fake_gateway, aws_endpoint):
    """The fake gateway, and the registry able to read the keys it checks."""
    return fake_gateway


def ref(prefix: str = "t") -> str:
    # Paystack transfer references: lowercase letters, digits, - and _.
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def a_past_day() -> date:
    """A day of its own for a test that lists a day (the fake's books last the session)."""
    return date(2001, 1, 1) + timedelta(days=random.randrange(7000))


class Sink:
    """Where the fake delivers webhooks in these tests: records each raw delivery, and
    answers 500 to the next ``failing`` ones (an API having a bad moment)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.failing = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received.append((self.path, dict(self.headers.items()), body))
                failed, sink.failing = sink.failing > 0, max(0, sink.failing - 1)
                self.send_response(500 if failed else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def about(self, reference: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [r for r in self.received if f'"{reference}"'.encode() in r[2]]

    def wait_about(
        self, reference: str, count: int = 1, timeout: float = 10.0
    ) -> list[tuple[str, dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.about(reference)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.about(reference)


@pytest.fixture(scope="module")
def sink():
    s = Sink()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture
def to_sink(fake, sink):
    previous = fake.webhook_url
    fake.webhook_url = sink.url
    yield sink
    fake.webhook_url = previous


# --------------------------------------------------------------------------- payments


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_checkout_is_paid_and_the_signed_webhook_and_the_re_query_agree(fake, to_sink, provider):
    gw = gateway(provider)
    reference, currency = ref(), CURRENCY[provider]

    checkout = gw.initialize_payment(
        reference=reference,
        amount=Decimal("5000.00"),
        currency=currency,
        email="a@example.test",
        idempotency_key=reference,
    )
    assert checkout.reference == reference
    assert checkout.data  # what the client needs: a URL, an access code or a client secret
    before = gw.verify_payment(reference, checkout.provider_id)
    assert (before.status, before.amount, before.currency) == (PaymentStatus.PENDING, Decimal("5000.00"), currency)

    answer = fake.pay(provider, reference, "5000.00", currency)

    assert answer["delivered_status"] == 200
    [(path, headers, body)] = to_sink.about(reference)
    assert path == f"/v1/webhooks/{provider}"
    assert body == answer["webhook"]["body"].encode()  # the answer is the exact delivery
    gw.verify_webhook(headers, body)
    event = gw.parse_webhook(body)
    assert (event.kind, event.reference, event.amount, event.currency, event.status) == (
        "payment",
        reference,
        Decimal("5000.00"),
        currency,
        "succeeded",
    )
    after = gw.verify_payment(reference, checkout.provider_id)
    assert (after.status, after.amount, after.reference) == (PaymentStatus.SUCCEEDED, Decimal("5000.00"), reference)
    assert after.fee is not None and after.fee > 0
    assert after.paid_at is not None
    # By reference alone too (the consumer of a webhook may hold only the reference).
    assert gw.verify_payment(reference).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("provider", ["stripe", "flutterwave"])
def test_a_failed_payment_is_announced_and_verifies_failed(fake, to_sink, provider):
    gw = gateway(provider)
    reference, currency = ref(), CURRENCY[provider]
    gw.initialize_payment(
        reference=reference,
        amount=Decimal("10.00"),
        currency=currency,
        email="a@example.test",
        idempotency_key=reference,
    )

    answer = fake.pay(provider, reference, "10.00", currency, status="failed")

    event = gw.parse_webhook(answer["webhook"]["body"].encode())
    assert (event.kind, event.status) == ("payment", "failed")
    assert gw.verify_payment(reference).status is PaymentStatus.FAILED


def test_paystack_sends_no_webhook_for_a_failed_charge_and_verify_tells(fake, to_sink):
    gw = gateway("paystack")
    reference = ref()
    gw.initialize_payment(
        reference=reference, amount=Decimal("10.00"), currency="NGN", email="a@example.test", idempotency_key=reference
    )

    answer = fake.pay("paystack", reference, "10.00", "NGN", status="failed")

    assert answer == {"delivered_status": None, "webhook": None}
    assert to_sink.about(reference) == []
    assert gw.verify_payment(reference).status is PaymentStatus.FAILED


def test_paystack_refuses_a_second_checkout_with_the_same_reference(fake):
    gw = gateway("paystack")
    reference = ref()
    args = {"reference": reference, "amount": Decimal("1.00"), "currency": "NGN", "email": "a@example.test"}
    gw.initialize_payment(**args, idempotency_key="k")
    with pytest.raises(GatewayRefused) as refused:
        gw.initialize_payment(**args, idempotency_key="k")
    assert (refused.value.status, refused.value.code) == (400, "duplicate_reference")


def test_stripe_replays_a_checkout_for_the_same_idempotency_key_and_refuses_it_with_other_terms(fake):
    gw = gateway("stripe")
    reference = ref()
    first = gw.initialize_payment(
        reference=reference, amount=Decimal("20.00"), currency="USD", email="a@example.test", idempotency_key=reference
    )
    again = gw.initialize_payment(
        reference=reference, amount=Decimal("20.00"), currency="USD", email="a@example.test", idempotency_key=reference
    )
    assert again == first
    with pytest.raises(GatewayRefused) as refused:
        gw.initialize_payment(
            reference=reference,
            amount=Decimal("21.00"),
            currency="USD",
            email="a@example.test",
            idempotency_key=reference,
        )
    assert refused.value.code == "idempotency_error"


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("provider", "amount", "currency", "wire"),
    [
        ("paystack", "5000.00", "NGN", 500000),  # kobo
        ("paystack", "0.01", "GHS", 1),  # pesewas
        ("stripe", "12.34", "USD", 1234),  # cents
        ("stripe", "5000", "JPY", 5000),  # a zero-decimal currency: no scaling
        ("flutterwave", "1234.56", "NGN", Decimal("1234.56")),  # major units, a JSON number
        ("flutterwave", "700", "UGX", Decimal("700")),
    ],
)
def test_amounts_travel_in_each_providers_units_and_come_back_exact(fake, provider, amount, currency, wire):
    gw = gateway(provider)
    reference, day = ref(), a_past_day()
    value = Decimal(amount)
    gw.initialize_payment(
        reference=reference, amount=value, currency=currency, email="a@example.test", idempotency_key=reference
    )
    fake.pay(
        provider, reference, amount, currency, deliver=False, paid_at=datetime.combine(day, datetime.min.time(), UTC)
    )

    report = fake.transactions(provider, day)
    [row] = [r for r in report["data"] if reference in json.dumps(r, default=str)]
    assert row["amount"] == wire and not isinstance(row["amount"], float)
    assert row["currency"] == (currency.lower() if provider == "stripe" else currency)
    paid = gw.verify_payment(reference)
    assert (paid.amount, paid.currency) == (value, currency)


def test_flutterwave_fees_keep_their_thousandths(fake):
    gw = gateway("flutterwave")
    reference = ref()
    fake.pay("flutterwave", reference, "1875.00", "NGN", deliver=False)
    assert gw.verify_payment(reference).fee == Decimal("26.250")  # 1.4%, reported to the thousandth


# --------------------------------------------------------------------------- listing


@pytest.mark.parametrize(("provider", "page_size"), [("paystack", 50), ("stripe", 100), ("flutterwave", 10)])
def test_a_days_payments_are_listed_in_pages_and_only_that_day(fake, provider, page_size):
    gw = gateway(provider)
    day, currency = a_past_day(), CURRENCY[provider]
    start = datetime.combine(day, datetime.min.time(), UTC)
    references = [ref() for _ in range(page_size + 3)]
    for i, reference in enumerate(references):
        fake.pay(provider, reference, f"{i + 1}.00", currency, deliver=False, paid_at=start + timedelta(minutes=i))
    last_moment, next_day = ref(), ref()
    fake.pay(provider, last_moment, "7.00", currency, deliver=False, paid_at=start + timedelta(days=1, milliseconds=-1))
    fake.pay(provider, next_day, "7.00", currency, deliver=False, paid_at=start + timedelta(days=1))
    fake.pay(provider, ref(), "7.00", currency, deliver=False, paid_at=start - timedelta(milliseconds=1))

    pages, cursor = [], None
    while True:
        page = gw.list_payments(day, cursor)
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(pages) < 10, "the cursor never ends"

    assert [len(p) for p in pages] == [page_size, 4]
    seen = {p.reference: p for items in pages for p in items}
    assert set(seen) == {*references, last_moment}
    assert all(p.status is PaymentStatus.SUCCEEDED for p in seen.values())
    assert seen[references[4]].amount == Decimal("5.00")


def test_an_empty_day_is_one_empty_page(fake):
    for provider in PROVIDERS:
        page = gateway(provider).list_payments(date(1999, 12, 31))
        assert page.items == [] and page.next_cursor is None


# --------------------------------------------------------------------------- payouts


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_payout_is_accepted_pending_and_settled_by_a_signed_webhook(fake, to_sink, provider):
    gw = gateway(provider)
    reference, currency = ref("wd"), CURRENCY[provider]
    payout = gw.create_payout(
        reference=reference,
        amount=Decimal("1500.50"),
        currency=currency,
        bank_code="058",
        account_number="0123456789",
        account_name="ADA TESTER",
        narration="withdrawal",
    )
    assert (payout.reference, payout.status) == (reference, PayoutStatus.PENDING)

    [(path, headers, body)] = to_sink.wait_about(reference)

    assert path == f"/v1/webhooks/{provider}"
    gw.verify_webhook(headers, body)
    event = gw.parse_webhook(body)
    assert (event.kind, event.reference, event.status, event.amount, event.currency) == (
        "payout",
        reference,
        "succeeded",
        Decimal("1500.50"),
        currency,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_payout_is_idempotent_on_its_reference(fake, to_sink, provider):
    gw = gateway(provider)
    reference = ref("wd")
    args = {
        "reference": reference,
        "amount": Decimal("10.00"),
        "currency": CURRENCY[provider],
        "bank_code": "058",
        "account_number": "0123456789",
        "account_name": "ADA TESTER",
        "narration": "withdrawal",
    }
    first = gw.create_payout(**args)
    second = gw.create_payout(**args)
    assert second.provider_id == first.provider_id
    to_sink.wait_about(reference)
    time.sleep(0.5)
    assert len(to_sink.about(reference)) == 1  # one payout, one outcome


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failing_payout_is_accepted_then_fails_by_webhook(fake, to_sink, provider):
    fake.misbehave(provider, payout="fail")
    gw = gateway(provider)
    reference = ref("wd")
    payout = gw.create_payout(
        reference=reference,
        amount=Decimal("10.00"),
        currency=CURRENCY[provider],
        bank_code="058",
        account_number="0123456789",
        account_name="ADA TESTER",
        narration="withdrawal",
    )
    assert payout.status is PayoutStatus.PENDING
    [(_, headers, body)] = to_sink.wait_about(reference)
    gw.verify_webhook(headers, body)
    event = gw.parse_webhook(body)
    assert (event.kind, event.status) == ("payout", "failed")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_racing_payouts_with_one_reference_are_one_payout_and_one_outcome(fake, to_sink, provider):
    # A slow provider widens the window between "is this reference new?" and "record it".
    fake.misbehave(provider, payout="slow", slow_seconds="0.3")
    gw = gateway(provider)  # one adapter (one connection pool) shared by the threads
    reference = ref("wd")
    args = {
        "reference": reference,
        "amount": Decimal("10.00"),
        "currency": CURRENCY[provider],
        "bank_code": "058",
        "account_number": "0123456789",
        "account_name": "ADA TESTER",
        "narration": "withdrawal",
    }
    start = threading.Barrier(8)

    def pay_out(_: int):
        start.wait()
        return gw.create_payout(**args)

    with ThreadPoolExecutor(8) as pool:
        payouts = list(pool.map(pay_out, range(8)))

    assert len({p.provider_id for p in payouts}) == 1
    to_sink.wait_about(reference)
    time.sleep(0.5)
    assert len(to_sink.about(reference)) == 1


def test_racing_paystack_checkouts_with_one_reference_open_exactly_one(fake):
    gw = gateway("paystack")
    reference = ref()
    start = threading.Barrier(8)

    def open_checkout(_: int):
        start.wait()
        try:
            return gw.initialize_payment(
                reference=reference, amount=Decimal("5.00"), currency="NGN", email="a@example.test", idempotency_key="k"
            )
        except GatewayRefused as refused:
            return refused.code

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(open_checkout, range(8)))

    assert sorted(map(str, outcomes)).count("duplicate_reference") == 7
    assert len([o for o in outcomes if not isinstance(o, str)]) == 1


def test_a_held_payout_settles_when_told(fake, to_sink):
    fake.misbehave("paystack", payout="hold")
    gw = gateway("paystack")
    reference = ref("wd")
    gw.create_payout(
        reference=reference,
        amount=Decimal("10.00"),
        currency="NGN",
        bank_code="058",
        account_number="0123456789",
        account_name="ADA TESTER",
        narration="withdrawal",
    )
    time.sleep(0.5)
    assert to_sink.about(reference) == []
    answer = fake.settle("paystack", reference, "failed", "Account closed")
    event = gw.parse_webhook(answer["webhook"]["body"].encode())
    assert (event.type, event.status) == ("transfer.failed", "failed")
    assert len(to_sink.about(reference)) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_payout_is_re_queried_pending_then_as_its_webhook_settled_it(fake, to_sink, provider):
    fake.misbehave(provider, payout="hold")
    gw = gateway(provider)
    reference = ref("wd")
    payout = gw.create_payout(
        reference=reference,
        amount=Decimal("10.00"),
        currency=CURRENCY[provider],
        bank_code="058",
        account_number="0123456789",
        account_name="ADA TESTER",
        narration="withdrawal",
    )
    assert gw.verify_payout(reference, payout.provider_id).status is PayoutStatus.PENDING

    fake.settle(provider, reference, "failed", "Account closed")

    again = gw.verify_payout(reference, payout.provider_id)
    assert (again.reference, again.provider_id, again.status, again.reason) == (
        reference,
        payout.provider_id,
        PayoutStatus.FAILED,
        "Account closed",
    )
    if provider == "paystack":
        assert gw.verify_payout(reference).status is PayoutStatus.FAILED  # by reference alone
    else:
        with pytest.raises(GatewayRefused) as refused:
            gw.verify_payout(reference)
        assert refused.value.code == "unsupported"
        with pytest.raises(GatewayRefused) as refused:
            gw.verify_payout(ref("wd"), payout.provider_id)  # someone else's payout id
        assert refused.value.code == "mismatch"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_payout_is_gateway_refused_at_once_and_an_erroring_one_unavailable_after_retries(fake, provider):
    gw = gateway(provider)
    args = {
        "amount": Decimal("10.00"),
        "currency": CURRENCY[provider],
        "bank_code": "058",
        "account_number": "0123456789",
        "account_name": "ADA TESTER",
        "narration": "withdrawal",
    }
    fake.misbehave(provider, payout="refuse")
    before = len(fake.requests(provider))
    with pytest.raises(GatewayRefused) as refused:
        gw.create_payout(reference=ref("wd"), **args)
    assert refused.value.status == 400
    payout_calls = [r for r in fake.requests(provider)[before:] if "transferrecipient" not in r]
    assert len(payout_calls) == 1  # a 4xx is never retried

    fake.misbehave(provider, payout="error")
    before = len(fake.requests(provider))
    with pytest.raises(GatewayUnavailable):
        gw.create_payout(reference=ref("wd"), **args)
    payout_calls = [r for r in fake.requests(provider)[before:] if "transferrecipient" not in r]
    assert len(payout_calls) == 3  # 1 + LEDGERLINE_GATEWAY_RETRIES (2 in tests)


# --------------------------------------------------------------------------- account names


@pytest.mark.parametrize("provider", ["paystack", "flutterwave"])
def test_an_account_name_is_resolved_and_an_unknown_account_refused(fake, provider):
    gw = gateway(provider)
    account = gw.resolve_account("058", "0123456789")
    assert (account.bank_code, account.account_number, account.account_name) == (
        "058",
        "0123456789",
        account_name("058", "0123456789"),
    )
    with pytest.raises(GatewayRefused) as refused:
        gw.resolve_account("058", "0000000000")
    assert refused.value.status == 422
    with pytest.raises(GatewayRefused):
        gw.resolve_account("058", "12345")


def test_stripe_has_no_account_name_enquiry_and_says_so_without_a_call(fake):
    before = len(fake.requests("stripe"))
    with pytest.raises(GatewayRefused) as refused:
        gateway("stripe").resolve_account("058", "0123456789")
    assert refused.value.code == "unsupported"
    assert len(fake.requests("stripe")) == before


# --------------------------------------------------------------------------- timeouts, retries, refusals


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_slow_verify_times_out_into_gateway_unavailable_within_the_bounded_retries(fake, provider):
    from ledgerline.config import settings

    cfg = settings()
    reference = ref()
    fake.pay(provider, reference, "10.00", CURRENCY[provider], deliver=False)
    fake.misbehave(provider, verify="slow", slow_seconds=cfg.gateway_timeout_seconds + 2)
    before = len(fake.requests(provider))

    started = time.monotonic()
    with pytest.raises(GatewayUnavailable, match="3 attempts"):
        gateway(provider).verify_payment(reference)
    elapsed = time.monotonic() - started

    attempts = cfg.gateway_retries + 1
    assert len(fake.requests(provider)) - before == attempts
    # Each attempt waits its timeout; the backoffs between them add at most 0.25 + 0.5 s.
    assert attempts * cfg.gateway_timeout_seconds <= elapsed < attempts * cfg.gateway_timeout_seconds + 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failing_verify_is_retried_then_gateway_unavailable(fake, provider):
    reference = ref()
    fake.pay(provider, reference, "10.00", CURRENCY[provider], deliver=False)
    fake.misbehave(provider, verify="fail")
    before = len(fake.requests(provider))
    with pytest.raises(GatewayUnavailable, match="HTTP 500"):
        gateway(provider).verify_payment(reference)
    assert len(fake.requests(provider)) - before == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_transient_503s_and_429s_are_retried_and_the_call_succeeds(fake, provider):
    reference = ref()
    fake.pay(provider, reference, "10.00", CURRENCY[provider], deliver=False)
    fake.misbehave(provider, unavailable=1, rate_limited=1)
    before = len(fake.requests(provider))
    assert gateway(provider).verify_payment(reference).status is PaymentStatus.SUCCEEDED
    assert len(fake.requests(provider)) - before == 3

    fake.misbehave(provider, unavailable=3)
    with pytest.raises(GatewayUnavailable, match="HTTP 503"):
        gateway(provider).verify_payment(reference)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unknown_reference_is_refused_once_not_retried(fake, provider):
    before = len(fake.requests(provider))
    with pytest.raises(GatewayRefused) as refused:
        gateway(provider).verify_payment(ref())
    if provider != "stripe":  # Stripe's search answers an empty list; the adapter refuses it
        assert refused.value.status == 404
        assert len(fake.requests(provider)) - before == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_wrong_secret_key_is_refused_401(fake, provider):
    from ledgerline.config import settings
    from ledgerline.gateways.flutterwave import Flutterwave
    from ledgerline.gateways.paystack import Paystack
    from ledgerline.gateways.stripe import Stripe

    url = settings().gateway_urls[provider]
    adapter = {
        "paystack": lambda: Paystack(secret_key="sk_test_wrong", base_url=url, timeout=2, retries=2),
        "stripe": lambda: Stripe(secret_key="sk_test_wrong", webhook_secrets=[], base_url=url, timeout=2, retries=2),
        "flutterwave": lambda: Flutterwave(
            secret_key="FLWSECK_TEST-wrong-X", secret_hash="h", base_url=url, timeout=2, retries=2
        ),
    }[provider]()
    with pytest.raises(GatewayRefused) as refused:
        adapter.list_payments(date(2020, 1, 1))
    assert refused.value.status == 401


def test_nothing_listening_is_gateway_unavailable(fake):
    from ledgerline.gateways.paystack import Paystack
    from ledgerline.local.aws import free_port

    adapter = Paystack(secret_key="k", base_url=f"http://127.0.0.1:{free_port()}", timeout=1, retries=1, backoff=0.01)
    with pytest.raises(GatewayUnavailable, match="2 attempts"):
        adapter.verify_payment("r")


def test_an_unknown_provider_is_a_404_problem(fake):
    with pytest.raises(UnknownProvider) as unknown:
        gateway("paypal")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_provider")


# --------------------------------------------------------------------------- misbehaving webhooks and verifies


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_lying_verify_reports_one_minor_unit_less(fake, provider):
    reference = ref()
    fake.pay(provider, reference, "10.00", CURRENCY[provider], deliver=False)
    fake.misbehave(provider, verify="wrong_amount")
    assert gateway(provider).verify_payment(reference).amount == Decimal("9.99")
    fake.misbehave(provider, verify="pending")
    assert gateway(provider).verify_payment(reference).status is PaymentStatus.PENDING


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_no_adapter_can_read_is_unavailable_not_a_refusal(fake, provider):
    # A proxy's page with a 200 in place of the provider's JSON: retry later, never "refused"
    # (a refusal could be taken for the payment's failure).
    reference = ref()
    fake.pay(provider, reference, "10.00", CURRENCY[provider], deliver=False)
    fake.misbehave(provider, verify="garbage")
    with pytest.raises(GatewayUnavailable, match="cannot read"):
        gateway(provider).verify_payment(reference)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_duplicate_deliveries_are_the_same_event(fake, to_sink, provider):
    fake.misbehave(provider, duplicates=2)
    reference = ref()
    answer = fake.pay(provider, reference, "10.00", CURRENCY[provider])
    assert answer["deliveries"] == [200, 200, 200]
    received = to_sink.about(reference)
    assert len(received) == 3
    gw = gateway(provider)
    assert len({gw.parse_webhook(body).event_id for _, _, body in received}) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_webhook_the_api_does_not_take_is_delivered_again_when_retries_are_on(fake, to_sink, provider):
    reference = ref()
    to_sink.failing = 2
    without = fake.pay(provider, reference, "10.00", CURRENCY[provider])
    assert (without["delivered_status"], without["deliveries"]) == (500, [500])  # one attempt by default

    fake.misbehave(provider, webhook_retries=3, webhook_retry_seconds="0.01")
    answer = fake.pay(provider, reference, "10.00", CURRENCY[provider])

    assert (answer["delivered_status"], answer["deliveries"]) == (200, [500, 200])
    last = to_sink.about(reference)[-2:]
    assert last[0][2] == last[1][2]  # the same signed body again
    to_sink.failing = 5
    answer = fake.pay(provider, ref(), "10.00", CURRENCY[provider])
    assert answer["deliveries"] == [500, 500, 500, 500]  # 1 + 3 retries, then it gives up
    to_sink.failing = 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_badly_signed_webhook_does_not_verify(fake, to_sink, provider):
    fake.misbehave(provider, signature="invalid")
    answer = fake.pay(provider, ref(), "10.00", CURRENCY[provider])
    with pytest.raises(SignatureInvalid):
        gateway(provider).verify_webhook(answer["webhook"]["headers"], answer["webhook"]["body"].encode())


def test_a_stale_stripe_webhook_does_not_verify(fake, to_sink):
    fake.misbehave("stripe", signature="stale")
    answer = fake.pay("stripe", ref(), "10.00", "USD")
    with pytest.raises(SignatureInvalid, match="older"):
        gateway("stripe").verify_webhook(answer["webhook"]["headers"], answer["webhook"]["body"].encode())


@pytest.mark.parametrize("scheme", ["signature", "verif-hash", "both"])
def test_flutterwave_webhooks_verify_in_each_scheme(fake, to_sink, scheme):
    fake.misbehave("flutterwave", flutterwave_scheme=scheme)
    answer = fake.pay("flutterwave", ref(), "10.00", "NGN")
    headers = {k.lower(): v for k, v in answer["webhook"]["headers"].items()}
    assert ("flutterwave-signature" in headers) == (scheme in ("signature", "both"))
    assert ("verif-hash" in headers) == (scheme in ("verif-hash", "both"))
    gateway("flutterwave").verify_webhook(headers, answer["webhook"]["body"].encode())


def test_misbehaviour_is_refused_when_unknown(fake):
    import requests

    r = requests.post(f"{fake.url}/_fake/paystack/misbehave", json={"verify": "explode"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{fake.url}/_fake/paystack/misbehave", json={"teleport": True}, timeout=10)
    assert r.status_code == 400


# --------------------------------------------------------------------------- the CLI


def test_ledgerline_gateway_pay_answers_the_exact_delivery(fake, to_sink, capsys):
    from ledgerline import cli

    reference = ref()
    code = cli.main(
        [
            "gateway",
            "pay",
            "--provider",
            "paystack",
            "--reference",
            reference,
            "--amount",
            "5000.00",
            "--currency",
            "NGN",
        ]
    )
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["delivered_status"] == 200
    [(_, headers, body)] = to_sink.about(reference)
    assert body.decode() == answer["webhook"]["body"]
    gateway("paystack").verify_webhook(headers, body)
    assert gateway("paystack").verify_payment(reference).amount == Decimal("5000.00")


# --------------------------------------------------------------------------- local secrets


def test_an_older_local_secrets_file_gains_the_new_gateway_keys_and_keeps_its_values(tmp_path, capsys):
    from ledgerline.local import aws

    path = tmp_path / "local-secrets.json"
    old = {
        "gateways": {
            "paystack_secret_key": "sk_test_old",
            "stripe_webhook_secret": "whsec_old",
            "flutterwave_secret_hash": "old-hash",
        },
        "blind_index_key": "ab" * 32,
    }
    path.write_text(json.dumps(old))
    path.chmod(0o600)

    values = aws.load_dev_secrets(path)

    assert {k: values["gateways"][k] for k in old["gateways"]} == old["gateways"]
    assert values["blind_index_key"] == old["blind_index_key"]
    assert values["gateways"]["stripe_secret_key"].startswith("sk_test_")
    assert values["gateways"]["flutterwave_secret_key"].startswith("FLWSECK_TEST-")
    assert json.loads(path.read_text()) == values  # written back, so the next start agrees
    assert path.stat().st_mode & 0o777 == 0o600
    assert aws.load_dev_secrets(path) == values
    printed = aws.dev_secrets(path)  # what `ledgerline dev secrets` prints
    assert printed["paystack_secret_key"] == "sk_test_old"
    assert printed["stripe_secret_key"] == values["gateways"]["stripe_secret_key"]


def test_a_stripe_signing_secret_being_rolled_verifies_with_the_new_and_the_previous(fake):
    from ledgerline.aws import clients, resources, secrets
    from ledgerline.gateways import signatures

    sm = clients.client("secretsmanager")
    secret_id = resources.gateway_secret_id()
    original = sm.get_secret_value(SecretId=secret_id)["SecretString"]
    keys = json.loads(original)
    rolled = {
        **keys,
        "stripe_webhook_secret": "whsec_new_one",
        "stripe_webhook_secret_previous": keys["stripe_webhook_secret"],
    }
    sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(rolled))
    secrets.reset()
    try:
        gw = gateway("stripe")
        body = b'{"id":"evt_1","object":"event"}'
        for signer in ("whsec_new_one", keys["stripe_webhook_secret"]):
            gw.verify_webhook(signatures.webhook_headers("stripe", body, {"stripe_webhook_secret": signer}), body)
        with pytest.raises(SignatureInvalid):
            gw.verify_webhook(
                signatures.webhook_headers("stripe", body, {"stripe_webhook_secret": "whsec_other"}), body
            )
    finally:
        sm.put_secret_value(SecretId=secret_id, SecretString=original)
        secrets.reset()
