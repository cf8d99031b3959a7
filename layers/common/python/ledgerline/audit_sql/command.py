"""``ledgerline audit query``: a ready-made query (``--named``) or any SELECT, printed."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ledgerline.audit_sql import named, output, run
from ledgerline.audit_sql.named import QueryError
from ledgerline.config import settings


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("sql", nargs="?", help="one SELECT over <prefix>_audit.audit_events (Athena's SQL)")
    p.add_argument("--named", metavar="NAME", help="a ready-made query (--list shows them)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a ready-made query's parameter")
    p.add_argument("--list", action="store_true", help="list the ready-made queries and their parameters")
    p.add_argument("--show", action="store_true", help="print the ready-made query's SQL instead of running it")
    p.add_argument("--format", choices=sorted(output.FORMATS), help="default: table on a terminal, else csv")
    return p


def query(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.list:
        for q in named.all_queries().values():
            params = " ".join(f"--param {p.name}=<{p.type}>" for p in q.params)
            out.write(f"{q.name}  {params}\n    {q.summary}\n")
        return 0
    if bool(args.named) == bool(args.sql):
        raise QueryError('give either SQL ("SELECT ...") or --named NAME')
    if args.named:
        chosen = named.get(args.named)
        if args.show:
            out.write(chosen.text_for(settings().resource_prefix))
            return 0
        result = run.run_named(chosen, _params(args.param))
    else:
        if args.param:
            raise QueryError("--param goes with --named; write the values into your own SQL")
        result = run.run(args.sql)
    fmt = args.format or ("table" if out.isatty() else "csv")
    output.FORMATS[fmt](result.columns, result.rows, out)
    return 0


def _params(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise QueryError(f"--param {pair!r}: expected NAME=VALUE")
        values[name.strip()] = value
    return values
