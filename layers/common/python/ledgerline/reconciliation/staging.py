"""The report, streamed into ``reconciliation_staging`` with one COPY.

A file-like reader pulls the gateway's pages only as COPY asks for more bytes, so memory
holds one page and one buffer whatever the day's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal

from ledgerline.gateways.base import GatewayPayment
from ledgerline.reconciliation.fees import expected_fee

COLUMNS = "run_id, reference, provider_id, amount, currency, status, fee, expected_fee, paid_at"

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    """A gateway's text (reference, id, currency): tabs, newlines and backslashes escaped."""
    return value.translate(_ESCAPES)


def _opt(value: object) -> str:
    return "\\N" if value is None else str(value)


def copy_lines(run_id: str, provider: str, payments: Iterable[GatewayPayment]) -> Iterator[str]:
    """One COPY text-format line per reported payment. Only the gateway's text needs
    escaping: amounts, statuses and times are ours, formatted here (this loop runs a
    million times on a big day)."""
    for p in payments:
        fee: Decimal | None = p.fee
        expected = expected_fee(provider, p.amount, p.currency) if fee is not None else None
        paid = p.paid_at.isoformat() if p.paid_at is not None else None
        yield (
            f"{run_id}\t{_text(p.reference)}\t{_text(p.provider_id)}\t{p.amount}\t{_text(p.currency)}"
            f"\t{p.status.value}\t{_opt(fee)}\t{_opt(expected)}\t{_opt(paid)}\n"
        )


class LineReader:
    """What ``copy_expert`` reads from: ``read(size)`` over a generator of lines."""

    def __init__(self, lines: Iterator[str], on_line: Callable[[int], None] | None = None) -> None:
        self._lines = lines
        self._buffer = ""
        self._on_line = on_line
        self.count = 0
        # What the source raised: COPY reports it only as a cancelled query.
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> str:
        want = size if size > 0 else 1 << 16
        parts = [self._buffer]
        have = len(self._buffer)
        while have < want:
            try:
                line = next(self._lines, None)
            except BaseException as exc:
                self.error = exc
                raise
            if line is None:
                break
            parts.append(line)
            have += len(line)
            self.count += 1
            if self._on_line is not None:
                self._on_line(self.count)
        text = "".join(parts)
        self._buffer = text[want:]
        return text[:want]

    readline = read
