"""Printing a result: a table for people, CSV or JSON for programs."""

from __future__ import annotations

import csv
import json
from typing import TextIO

Row = tuple[str | None, ...]
CELL_MAX = 60  # a table cell longer than this is cut (payloads); CSV and JSON never are
NULL = ""


def table(columns: tuple[str, ...], rows: list[Row], out: TextIO) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n")


def _cell(value: str | None) -> str:
    text = NULL if value is None else value.replace("\n", " ")
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…"


def csv_rows(columns: tuple[str, ...], rows: list[Row], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)


def json_rows(columns: tuple[str, ...], rows: list[Row], out: TextIO) -> None:
    """An array of objects; values are text (or null), as Athena answers them."""
    json.dump([dict(zip(columns, row, strict=True)) for row in rows], out, indent=2, ensure_ascii=False)
    out.write("\n")


FORMATS = {"table": table, "csv": csv_rows, "json": json_rows}
