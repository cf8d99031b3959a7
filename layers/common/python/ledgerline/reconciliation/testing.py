"""The ledger side of a seeded report, written fast (tests and the bench): one COPY of
the day's succeeded payments, as the owner (the application role cannot write payments).

Every payment is credited by ``transaction_id``, a real posting the caller made: one
posting stands for all of them (a million top-up postings would measure the ledger, not
the reconciliation, and the comparison reads only the payments).
"""

from __future__ import annotations

from typing import Any

from ledgerline.local.fake_wire.report import SeededReport
from ledgerline.reconciliation.staging import LineReader


def insert_ledger_payments(
    owner_cur: Any, report: SeededReport, *, owner_id: str, account_id: str, transaction_id: str
) -> int:
    def lines() -> Any:
        for reference, amount, currency, created_at in report.ledger_rows():
            yield (
                f"{reference}\t{report.provider}\t{owner_id}\t{account_id}\t{amount}\t{currency}\tsucceeded"
                f"\t{transaction_id}\t{created_at.isoformat()}\t{created_at.isoformat()}\n"
            )

    reader = LineReader(lines())
    owner_cur.copy_expert(
        "COPY payments (reference, provider, owner_id, account_id, amount, currency, status, transaction_id,"
        " created_at, updated_at) FROM STDIN",
        reader,
    )
    return reader.count
