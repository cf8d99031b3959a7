"""The progress line of ``ledgerline reconcile`` run by hand: drawn on a terminal, silent
otherwise (a log file or a pipe gets only the summary)."""

from __future__ import annotations

import io

from ledgerline.reconciliation.run import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_counts_rows_and_ends_with_a_newline():
    screen = Terminal()
    bar = Progress(screen)
    bar(12_345)
    bar.done(20_000)
    text = screen.getvalue()
    assert "12345 report rows read" in text
    assert text.endswith("20000 report rows read" + " " * 30 + "\n")


def test_elsewhere_it_writes_nothing():
    pipe = io.StringIO()
    bar = Progress(pipe)
    bar(5)
    bar.done(5)
    assert pipe.getvalue() == ""
