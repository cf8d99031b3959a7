"""The activity feed against the real database: every audited action of the code base
has its sentence; subject users are recorded where rows are written (Python and SQL),
so a wallet credited by a gateway, a hold expired by the system and a failed login show
in the owner's feed; a login's place comes from its session."""

from __future__ import annotations

import pathlib
import re
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from ledgerline import audit, errors, jsonutil
from ledgerline.activity import list_activity, sentences
from ledgerline.activity.sentences import Facts, Money
from ledgerline.auth import sessions, users
from ledgerline.db import transaction
from ledgerline.ledger.operations import by_name
from ledgerline.ledger.testing import new_wallet
from ledgerline.payments import store

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "layers/common/python/ledgerline"
_QUOTED = re.compile(r"""['"]([a-z_]+(?:\.[a-z_]+)+)['"]""")
# Names shaped like actions that are not audit actions: providers' event types (gateways/),
# merchant webhook event types (webhooks/events.py), a notification type in the outbox.
# Notification types that look like actions (the mails' "type"), never written as audit rows.
NOT_AUDIT_ACTIONS = {"payment.received", "auth.login_code", "auth.email_verification", "auth.registration_attempted"}
# Actions built in SQL from a variable: 'payment.' || v_decision (payment_confirm.sql).
COMPOSED_ACTIONS = {"payment.flagged", "payment.failed"}


def audited_actions() -> set[str]:
    """Every action-shaped string in the code that writes audit rows, by namespace."""
    files = [*LIBRARY.rglob("*.py"), *(LIBRARY / "db/routines").glob("*.sql"), *(ROOT / "functions").rglob("*.py")]
    found = set()
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if "/gateways/" in rel or rel.endswith(("webhooks/events.py", "activity/sentences.py")):
            continue
        for name in _QUOTED.findall(path.read_text()):
            if name.split(".", 1)[0] in audit.CATEGORIES and name not in NOT_AUDIT_ACTIONS:
                found.add(name)
    return found | COMPOSED_ACTIONS


FACTS = [
    Facts(),
    Facts(you=True, reason="insufficient_funds"),
    Facts(credited=Money(Decimal("50000"), "NGN"), reference="GTB-8821", place="Lagos, NG"),
    Facts(you=True, debited=Money(Decimal("1500.5"), "NGN"), amount=Money(Decimal("7"), "KES")),
    Facts(you=True, credited=Money(Decimal("1"), "USD"), debited=Money(Decimal("1"), "USD")),
]


def test_every_audited_action_has_its_sentence():
    actions = audited_actions()
    assert len(actions) > 60, "the search finds the code's actions"
    assert {"transfer.completed", "payment.succeeded", "auth.login_succeeded", "withdrawal.paid"} <= actions
    missing = sorted(actions - set(sentences.SENTENCES))
    assert not missing, f"actions without a sentence in ledgerline/activity/sentences.py: {missing}"
    for action in actions:
        for facts in FACTS:
            text = sentences.render(action, facts)
            assert text and text[0].isupper() and "None" not in text and "{" not in text, (action, facts, text)


# Decisions one user takes about another's object: the decider reads them as theirs.
DECISIONS = [
    "user.created", "user.role_changed", "user.suspended", "user.reactivated", "withdrawal.approved",
    "withdrawal.rejected", "payment.resolved", "admin.account.frozen", "admin.account.unfrozen",
    "ledger.adjustment.posted", "ledger.transaction.reversed",
]  # fmt: skip


def test_the_one_who_decided_reads_it_as_their_doing_and_the_one_concerned_as_theirs():
    for action in DECISIONS:
        assert sentences.render(action, Facts(you=True)).startswith("You "), action
        assert not sentences.render(action, Facts(you=False)).startswith("You "), action


def test_every_template_names_a_known_namespace():
    for action in sentences.SENTENCES:
        audit.category_of(action)


def test_an_unknown_action_falls_back_to_its_words():
    assert sentences.render("escrow.funds_released", Facts()) == "Escrow funds released"


def test_amounts_are_written_in_the_currencys_minor_units_with_thousands():
    assert str(Money(Decimal("50000.0000"), "NGN")) == "NGN 50,000.00"
    assert str(Money(Decimal("-1500.5"), "NGN")) == "NGN 1,500.50"


def feed(user_id, **kw) -> list[Any]:
    items, _ = transaction(lambda cur: list_activity(cur, user_id, limit=200, **kw))
    return items


def subjects_of(owner_conn, action, resource_id) -> list[list[str]]:
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT subject_ids::text[] FROM audit_log WHERE action = %s AND resource_id = %s", (action, resource_id)
        )
        return [sorted(r[0]) for r in cur.fetchall()]


GATEWAY = {"id": None, "type": "gateway", "metadata": {"provider": "paystack"}}


def open_topup(account, amount) -> dict[str, Any]:
    args = by_name("topup").arguments(
        {"account_id": str(account.id), "amount": amount, "currency": "NGN", "provider": "paystack"},
        owner=account.owner_id,
    )
    actor = {"id": str(account.owner_id), "type": "user", "ip": "127.0.0.1"}

    def work(cur):
        cur.execute(
            "SELECT money_op(p_op => 'topup', p_actor => %s::jsonb, p_args => %s::jsonb) AS r",
            (jsonutil.dumps(actor), jsonutil.dumps(args)),
        )
        return cur.fetchone()["r"]["body"]

    return transaction(work)


def gateway_says(payment, decision):
    facts = {
        "event_id": f"evt-{uuid.uuid4().hex}",
        "type": "charge.success",
        "reference": payment["reference"],
        "amount": payment["amount"]["amount"],
        "currency": "NGN",
        "status": decision,
    }
    said = {"provider_id": "gw-1", "amount": payment["amount"]["amount"], "currency": "NGN", "status": decision}
    return transaction(
        lambda cur: store.confirm(
            cur, provider="paystack", event=facts, decision=decision, actor=GATEWAY, gateway=said, reason="declined"
        )
    )


@pytest.mark.usefixtures("aws_endpoint")
def test_a_gateway_credit_is_in_the_owners_feed_with_its_reference(database_url, owner_conn):
    account = new_wallet("NGN")
    payment = open_topup(account, "50000.00")
    gateway_says(payment, "succeeded")

    items = feed(account.owner_id)
    messages = {i.action: i.message for i in items}
    assert messages["payment.succeeded"] == f"Wallet credited NGN 50,000.00 (reference {payment['reference']})"
    assert messages["payment.initiated"] == f"You started a top-up of NGN 50,000.00 (reference {payment['reference']})"
    assert subjects_of(owner_conn, "payment.succeeded", payment["id"]) == [[str(account.owner_id)]]

    unpaid = open_topup(account, "10.00")
    gateway_says(unpaid, "failed")
    failed = [i.message for i in feed(account.owner_id) if i.action == "payment.failed"]
    assert failed == [f"A top-up of NGN 10.00 failed (reference {unpaid['reference']})"]
    assert subjects_of(owner_conn, "payment.failed", unpaid["id"]) == [[str(account.owner_id)]]

    stranger = new_wallet("NGN")
    assert not {i.id for i in items} & {i.id for i in feed(stranger.owner_id)}


def test_a_hold_the_system_expires_is_in_the_owners_feed(database_url, owner_conn):
    from ledgerline import ledger
    from ledgerline.ledger.testing import user_actor

    account = new_wallet("NGN", "20.00")
    hold = transaction(
        lambda cur: ledger.create_hold(
            cur, account_id=account.id, amount=Decimal("5.00"), currency="NGN", expires_in_seconds=1,
            actor=user_actor(account.owner_id), owner_id=account.owner_id,
        )
    )  # fmt: skip
    time.sleep(1.05)
    transaction(lambda cur: ledger.expire_due(cur))

    assert subjects_of(owner_conn, "hold.expired", str(hold.id)) == [[str(account.owner_id)]]
    expired = [i.message for i in feed(account.owner_id) if i.action == "hold.expired"]
    assert expired == ["A hold of NGN 5.00 expired and was released"]


@pytest.mark.usefixtures("aws_endpoint")
def test_a_login_shows_its_place_when_the_session_knows_it(database_url, owner_conn):
    password = "correct horse battery staple 9"
    email = f"feed-{uuid.uuid4().hex[:10]}@example.test"
    user = transaction(
        lambda cur: users.create_user(
            cur, email=email, password=password, full_name="Feed", actor=audit.Actor.system("tests")
        )
    )
    lagos = sessions.Client(ip="198.51.100.7", user_agent="pytest", request_id="r1", country="NG", city="Lagos")
    sessions.login(email, password, None, lagos)
    sessions.login(email, password, None, sessions.Client(ip="198.51.100.8", user_agent="pytest", request_id="r2"))
    with pytest.raises(errors.Unauthorized):
        sessions.login(email, "the wrong password 1", None, lagos)

    messages = [i.message for i in feed(user.id, category="auth")]
    assert messages[:3] == ["A sign-in to your account failed", "You logged in", "You logged in from Lagos, NG"]


def test_an_administrators_withdrawal_decisions_are_in_the_owners_feed(crypto_env, owner_conn):
    from ledgerline.ledger.testing import create_user
    from tests.integration.test_withdrawals import approve, reject, requested

    admin = transaction(lambda cur: create_user(cur, "admin"))
    wallet = new_wallet("NGN", "500.00")
    approved, rejected = requested(wallet, "100.00"), requested(wallet, "40.00")
    assert approve(admin, approved["id"]).status == 200
    assert reject(admin, rejected["id"]).status == 200

    owner = str(wallet.owner_id)
    assert subjects_of(owner_conn, "withdrawal.approved", approved["id"]) == [[owner]]
    assert subjects_of(owner_conn, "withdrawal.rejected", rejected["id"]) == [[owner]]
    messages = [i.message for i in feed(wallet.owner_id) if i.action.startswith("withdrawal.")]
    assert messages == [
        "Your withdrawal of NGN 40.00 was rejected; the money is back in your wallet",
        "Your withdrawal of NGN 100.00 was approved",
        "You asked to withdraw NGN 40.00",
        "You asked to withdraw NGN 100.00",
    ]
    assert [i.message for i in feed(admin) if i.action.startswith("withdrawal.")] == [
        "You rejected a withdrawal",
        "You approved a withdrawal",
    ]
