"""Ready-made queries: one ``queries/<name>.sql`` file each, runnable as it is in Athena.

A file starts with comment lines: the first says what it answers, then one
``-- param <name> (<type>): <meaning>`` line per ``?`` placeholder, in the order the
placeholders appear (Athena's execution parameters are positional). Types: ``date``
(YYYY-MM-DD, UTC; compared with the ``dt`` partition, so Athena reads only those days),
``uuid``, ``text``. The table is named ``ledgerline_audit.audit_events``, the default
resource prefix's; a copy with another prefix gets its own database name swapped in.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from ledgerline.audit_sql import schema

DEFAULT_TABLE = schema.qualified_table("ledgerline")
_PARAM = re.compile(r"--\s*param\s+([a-z_]+)\s+\((date|uuid|text)\):\s*(.+)")


class QueryError(RuntimeError):
    """A query that cannot run as asked: unknown name, missing or malformed parameter."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    meaning: str

    def parse(self, value: str) -> str:
        """The value as the query gets it (always text: the table's columns are strings)."""
        if self.type == "date":
            try:
                if len(value) == 10:
                    return date.fromisoformat(value).isoformat()
            except ValueError:
                pass
            raise QueryError(f"{self.name}: {value!r} is not a date like 2026-01-31")
        if self.type == "uuid":
            try:
                return str(uuid.UUID(value))
            except ValueError:
                raise QueryError(f"{self.name}: {value!r} is not an id (a UUID)") from None
        if not value:
            raise QueryError(f"{self.name}: empty")
        return value


@dataclass(frozen=True)
class NamedQuery:
    name: str
    summary: str
    params: tuple[Param, ...]
    sql: str  # the file's whole text, comments included: what README tells auditors to run

    def bind(self, values: dict[str, str]) -> list[str]:
        """The positional parameters, in placeholder order, from ``name → value``."""
        names = [p.name for p in self.params]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise QueryError(f"{self.name} takes {', '.join(names) or 'no parameters'}; not {', '.join(unknown)}")
        missing = [n for n in names if n not in values]
        if missing:
            raise QueryError(f"{self.name} needs --param " + " --param ".join(f"{n}=..." for n in missing))
        return [p.parse(values[p.name]) for p in self.params]

    def text_for(self, prefix: str) -> str:
        return self.sql.replace(DEFAULT_TABLE, schema.qualified_table(prefix))


def placeholders(sql: str) -> int:
    """How many ``?`` placeholders a statement has, outside string literals, quoted
    identifiers and comments (where a ``?`` is just a character)."""
    count = 0
    i = 0
    while i < len(sql):
        ch = sql[i]
        if ch in "'\"":
            end = sql.find(ch, i + 1)
            while end != -1 and sql[end + 1 : end + 2] == ch:  # a doubled quote is an escaped one
                end = sql.find(ch, end + 2)
            i = len(sql) if end == -1 else end + 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end == -1 else end + 1
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = len(sql) if end == -1 else end + 2
            continue
        count += ch == "?"
        i += 1
    return count


def parse(name: str, text: str) -> NamedQuery:
    comments = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        comments.append(line)
    if not comments:
        raise ValueError(f"{name}.sql: starts with no comment saying what it answers")
    params = tuple(Param(*m.groups()) for m in map(_PARAM.fullmatch, comments) if m)
    marks = placeholders(text)
    if marks != len(params):
        raise ValueError(f"{name}.sql: {marks} placeholders but {len(params)} param lines")
    return NamedQuery(name, comments[0].removeprefix("--").strip(), params, text)


@cache
def all_queries() -> dict[str, NamedQuery]:
    folder = resources.files("ledgerline.audit_sql") / "queries"
    found = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            name = entry.name.removesuffix(".sql")
            found[name] = parse(name, entry.read_text(encoding="utf-8"))
    return found


def get(name: str) -> NamedQuery:
    try:
        return all_queries()[name]
    except KeyError:
        raise QueryError(f"no ready-made query {name!r}; there are: {', '.join(all_queries())}") from None
