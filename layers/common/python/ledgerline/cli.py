"""``ledgerline``: the operator's command line (console script)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence

Command = Callable[[argparse.Namespace], int]
NEEDS_DATABASE = ("db", "users", "keys")  # on a laptop, these start the embedded server


def _db_migrate(args: argparse.Namespace) -> int:
    from ledgerline.db import migrate

    applied = migrate.migrate()
    print(json.dumps({"applied": applied, **migrate.status()}))
    return 0


def _db_url(args: argparse.Namespace) -> int:
    from ledgerline.db.connection import app_url, owner_url

    print(app_url() if args.app else owner_url())
    return 0


def _dev_up(args: argparse.Namespace) -> int:
    from ledgerline.local import stack

    return stack.run(port=args.port)


def _dev_secrets(args: argparse.Namespace) -> int:
    from ledgerline.local import aws

    print(json.dumps(aws.dev_secrets(), indent=2))
    return 0


def _users_create(args: argparse.Namespace) -> int:
    from ledgerline.audit import Actor
    from ledgerline.auth import users
    from ledgerline.db import transaction

    password = args.password or getpass.getpass("Password: ")
    user = transaction(
        lambda cur: users.create_user(
            cur,
            email=args.email,
            password=password,
            full_name=args.full_name or args.email.split("@")[0],
            role=args.role,
            actor=Actor.system("cli"),
        )
    )
    print(json.dumps({"id": str(user.id), "email": user.email, "full_name": user.full_name, "role": user.role}))
    return 0


def _gateway_pay(args: argparse.Namespace) -> int:
    """Pay a checkout at the local fake gateway: it delivers the signed webhook to the API
    and answers the exact delivery (docs/api.md "Local stack")."""
    import urllib.error
    import urllib.request

    from ledgerline import config

    body: dict[str, object] = {
        "reference": args.reference,
        "amount": args.amount,
        "currency": args.currency,
        "status": args.status,
    }
    if args.no_deliver:
        body["deliver"] = False
    url = f"http://127.0.0.1:{config.settings().fake_gateway_port}/_fake/{args.provider}/pay"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as err:
        print(f"error: {err.code} {err.read().decode()}", file=sys.stderr)
    except OSError as err:
        print(f"error: the fake gateway at {url} does not answer ({err}); is `make run` up?", file=sys.stderr)
    return 2


def _keys(args: argparse.Namespace) -> int:
    from ledgerline.crypto import rotation

    return rotation.main(args.rest)


def _audit_query(args: argparse.Namespace) -> int:
    from ledgerline import config
    from ledgerline.audit_sql import command

    if config.settings().local and not config.settings().aws_endpoint_url:
        from ledgerline.local import aws

        # The trail is in the bucket of the running local stack (`make run`).
        aws.point_library_at(f"http://{aws.DEFAULT_HOST}:{aws.configured_port()}")
    return command.query(args)


def _audit_stack() -> None:
    """On a laptop: the embedded database and the running local stack's moto (`make run`)."""
    from ledgerline import config

    if config.settings().environment == "aws":
        return
    from ledgerline.local import aws, embedded

    embedded.use_unless_configured()
    if not config.settings().aws_endpoint_url:
        aws.point_library_at(f"http://{aws.DEFAULT_HOST}:{aws.configured_port()}")


def _audit_ship(args: argparse.Namespace) -> int:
    from ledgerline.audit_trail import shipper

    _audit_stack()
    report = shipper.ship(batch_size=args.batch_size, time_budget=args.time_budget)
    print(json.dumps(report.to_json()))
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from ledgerline.audit_trail import verify
    from ledgerline.db.connection import app_url, connect

    _audit_stack()
    outcome = verify.verify(connect=lambda: connect(app_url()), progress=verify.Progress())
    print(outcome.message())
    if outcome.ok:
        try:
            verify.record(outcome, by=f"cli:{getpass.getuser()}")
        except Exception as exc:  # the trail verified; only recording it failed
            print(f"note: not recorded in audit_log_verified ({exc})", file=sys.stderr)
    return 0 if outcome.ok else 1


def _audit_retire(args: argparse.Namespace) -> int:
    """Detach the monthly audit_log partitions older than the months kept hot whose rows are
    chained, shipped and verified (db/routines/audit_log_retire.sql); as the owner."""
    from ledgerline import config
    from ledgerline.db.connection import connect, owner_url

    if config.settings().environment != "aws":
        from ledgerline.local import embedded

        embedded.use_unless_configured()
    conn = connect(owner_url(), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT audit_log_retire(p_keep_months => %s) AS r", (args.keep_months,))
            print(json.dumps(cur.fetchone()[0]))
    finally:
        conn.close()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ledgerline", description="Ledgerline operations")
    groups = p.add_subparsers(dest="group", required=True)

    db = groups.add_parser("db", help="database").add_subparsers(dest="command", required=True)
    db.add_parser("migrate", help="apply pending migrations").set_defaults(run=_db_migrate)
    url = db.add_parser("url", help="print the connection URL")
    url.add_argument("--app", action="store_true", help="the application role's URL instead of the owner's")
    url.set_defaults(run=_db_url)

    dev = groups.add_parser("dev", help="the local stack").add_subparsers(dest="command", required=True)
    up = dev.add_parser("up", help="run everything locally (what `make run` does)")
    up.add_argument("--port", type=int, default=None, help="API port (default LEDGERLINE_API_PORT or 3000)")
    up.set_defaults(run=_dev_up)
    dev.add_parser("secrets", help="print the local throwaway secrets as JSON").set_defaults(run=_dev_secrets)

    users = groups.add_parser("users", help="users").add_subparsers(dest="command", required=True)
    create = users.add_parser("create", help="create a user (e.g. the first admin)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="prompted for when omitted")
    create.add_argument("--full-name")
    create.add_argument("--role", default="user", choices=["user", "merchant", "admin", "auditor"])
    create.set_defaults(run=_users_create)

    gateway = groups.add_parser("gateway", help="the local fake payment gateway").add_subparsers(
        dest="command", required=True
    )
    pay = gateway.add_parser("pay", help="pay a checkout: the fake delivers the signed webhook to the API")
    pay.add_argument("--provider", required=True, choices=["paystack", "stripe", "flutterwave"])
    pay.add_argument("--reference", required=True)
    pay.add_argument("--amount", required=True, help='major units, e.g. "5000.00"')
    pay.add_argument("--currency", required=True)
    pay.add_argument("--status", default="success", choices=["success", "failed"])
    pay.add_argument("--no-deliver", action="store_true", help="change the fake's books only; send no webhook")
    pay.set_defaults(run=_gateway_pay)

    keys = groups.add_parser(
        "keys", help="field-encryption keys: rotate [--batch-size N] [--max-batches N] [--no-wait] | status"
    )
    keys.add_argument("rest", nargs=argparse.REMAINDER)
    keys.set_defaults(run=_keys)

    from ledgerline.audit_sql import command as audit_query

    audit = groups.add_parser("audit", help="the audit trail").add_subparsers(dest="command", required=True)
    audit_query.add_arguments(
        audit.add_parser("query", help="SQL over the shipped trail: Athena in AWS, DuckDB locally")
    ).set_defaults(run=_audit_query)
    ship = audit.add_parser("ship", help="chain and ship audit rows to the bucket now (the audit-ship job)")
    ship.add_argument("--batch-size", type=int, default=5_000)
    ship.add_argument("--time-budget", type=float, default=300.0, help="seconds before it stops starting batches")
    ship.set_defaults(run=_audit_ship)
    audit.add_parser(
        "verify", help="re-walk the chain from the bucket and the database; name the first difference"
    ).set_defaults(run=_audit_verify)
    retire = audit.add_parser(
        "retire", help="detach old monthly audit_log partitions once shipped and verified (as the owner)"
    )
    retire.add_argument("--keep-months", type=int, default=3, help="months kept in PostgreSQL (default 3)")
    retire.set_defaults(run=_audit_retire)

    from ledgerline.reconciliation import command as reconcile

    reconcile.add_arguments(
        groups.add_parser("reconcile", help="compare a provider's day report with the ledger now (issue 16)")
    ).set_defaults(run=reconcile.main)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ledgerline import config
    from ledgerline.errors import DomainError

    if args.group in NEEDS_DATABASE and config.settings().environment != "aws":
        from ledgerline.local import embedded

        embedded.use_unless_configured()

    try:
        return args.run(args)
    except DomainError as err:
        print(f"error: {err.detail}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # e.g. a local-only command outside the local stack
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
