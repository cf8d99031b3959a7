"""New-country step-up: a login from a country never seen for the user needs a second factor.

Each user's known countries are remembered (``known_countries``): every completed login
from a placed address records its country. A login whose password is right, from a
country that is not among them, gets no tokens until it proves a second factor:

* TOTP when the user has enrolled it (the login's usual ``otp``);
* else a one-time code e-mailed to the user. The login records a challenge and queues its
  id only; the notification worker (``prepare_delivery``) mints the 6-digit code, stores
  its SHA-256 digest and puts the code in the e-mail alone. The client sends the code as
  ``otp`` in the next login from that country, within 10 minutes; 5 wrong codes end a
  challenge, and every code tried counts against the account's ``otp`` rate limit and
  the login throttle, as TOTP codes do.

The first login of a user (no known country yet) records its country without a step-up:
there is nothing to compare it with, and the password was right. An unplaced login
(a private, loopback or unknown address) is neither stepped up nor recorded. An e-mailed
code proves the mailbox, not an enrolled factor: it does not add ``otp`` to the session's
``amr`` (administrators still need TOTP for their routes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import audit, errors, outbox
from ledgerline.audit import Actor

if TYPE_CHECKING:
    from ledgerline.db import Cursor

# Audit actions (auth category): a login from a never-seen country, challenged or
# completed; the worker mailing a code; an administrator clearing a known country.
LOGIN_NEW_COUNTRY = "auth.login_new_country"
LOGIN_CODE_SENT = "auth.login_code_sent"
KNOWN_COUNTRY_CLEARED = "user.known_country_cleared"
EVENT = "auth.login_code"  # the notification event type

CODE_TTL_MINUTES = 10
MAX_ATTEMPTS = 5  # wrong codes before a challenge dies
MIN_SECONDS_BETWEEN_MAILS = 60  # one code per minute per user and country, however often asked
CODE_DIGITS = 6

Runner = Callable[[Callable[[Any], Any]], Any]


class SecondFactorRequired(errors.OtpRequired):
    """401 ``otp_required`` whose body also says why (``new_country``), the country and
    which second factor to send (``totp`` or ``email_code``)."""

    def __init__(self, detail: str, *, country: str, second_factor: str) -> None:
        super().__init__(detail)
        self.country = country
        self.second_factor = second_factor

    def problem(self) -> dict[str, Any]:
        return super().problem() | {
            "reason": "new_country",
            "country": self.country,
            "second_factor": self.second_factor,
        }


@dataclass(frozen=True)
class Arrival:
    """A login from a country not yet known for the user."""

    country: str
    city: str | None
    first: bool  # the user's first known country: recorded without a second factor
    second_factor: str  # "none" (first), "totp" or "email_code"

    @property
    def stepped_up(self) -> bool:
        return self.second_factor != "none"

    def metadata(self, outcome: str) -> dict[str, Any]:
        return {"country": self.country, "city": self.city, "second_factor": self.second_factor, "outcome": outcome}


@dataclass(frozen=True)
class KnownCountry:
    country: str
    first_seen_at: datetime
    last_seen_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"country": self.country, "first_seen_at": self.first_seen_at, "last_seen_at": self.last_seen_at}


# -- at login ------------------------------------------------------------------------------


def assess(run: Runner, user_id: UUID, country: str | None, city: str | None, *, otp_enabled: bool) -> Arrival | None:
    """None when the login is not placed or its country is known; else the Arrival and
    the second factor it needs."""
    if country is None:
        return None

    def read(cur: Cursor) -> tuple[int, bool]:
        # "Known" also counts a placed session: a user whose only country an administrator
        # cleared has logged in from somewhere before, and is not at a first login.
        cur.execute(
            """
            SELECT count(*) + (SELECT count(*) FROM (SELECT 1 FROM sessions s
                                 WHERE s.user_id = %(user)s AND s.country IS NOT NULL LIMIT 1) placed) AS n,
                   coalesce(bool_or(country = %(country)s), false) AS seen
              FROM known_countries WHERE user_id = %(user)s
            """,
            {"country": country, "user": user_id},
        )
        row = cur.fetchone()
        return row["n"], row["seen"]

    known, seen = run(read)
    if seen:
        return None
    if known == 0:
        return Arrival(country, city, first=True, second_factor="none")
    return Arrival(country, city, first=False, second_factor="totp" if otp_enabled else "email_code")


def demand(run: Runner, user_id: UUID, arrival: Arrival, who: Actor) -> SecondFactorRequired:
    """The refusal of a login from a new country that came without a code: audited, and
    for a user without TOTP a code is e-mailed (at most one a minute per country). The
    caller raises what this returns."""

    def work(cur: Cursor) -> bool:
        mailed = arrival.second_factor == "email_code" and _challenge(cur, user_id, arrival.country)
        audit.record(
            cur, who, LOGIN_NEW_COUNTRY, "user", user_id,
            metadata=arrival.metadata("challenged") | {"code_mailed": mailed},
        )  # fmt: skip
        return mailed

    run(work)
    where = f"a country not seen for this account before ({arrival.country})"
    if arrival.second_factor == "totp":
        how = "send otp, the 6-digit code from the authenticator app (or a recovery code)"
    else:
        how = f"send otp, the code e-mailed to the account's address (valid {CODE_TTL_MINUTES} minutes)"
    return SecondFactorRequired(
        f"this login comes from {where}: {how}", country=arrival.country, second_factor=arrival.second_factor
    )


def _challenge(cur: Cursor, user_id: UUID, country: str) -> bool:
    """Record a challenge and queue its e-mail, unless one went out moments ago."""
    # One demand of a user at a time: parallel logins (a client's retries) mail one code.
    cur.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (user_id,))
    cur.execute(
        """
        SELECT 1 FROM login_challenges
         WHERE user_id = %s AND country = %s AND used_at IS NULL AND expires_at > now()
           AND requested_at > now() - make_interval(secs => %s)
         LIMIT 1
        """,
        (user_id, country, MIN_SECONDS_BETWEEN_MAILS),
    )
    if cur.fetchone() is not None:
        return False
    cur.execute(
        """
        INSERT INTO login_challenges (user_id, country, expires_at)
        VALUES (%s, %s, now() + make_interval(mins => %s)) RETURNING id
        """,
        (user_id, country, CODE_TTL_MINUTES),
    )
    challenge_id = cur.fetchone()["id"]
    outbox.enqueue(cur, "notifications", {"type": EVENT, "challenge_id": str(challenge_id)})
    return True


def passed(cur: Cursor, user_id: UUID, arrival: Arrival | None, code: str) -> bool:
    """Whether the login proved what its arrival needs. TOTP is checked by the login's
    own second-factor step; here only an e-mailed code, spent when it matches. A wrong
    code counts against the challenge (the caller's transaction commits it)."""
    if arrival is None or arrival.second_factor != "email_code":
        return True
    if not code or len(code) > 20:
        return False
    cur.execute(
        """
        SELECT id, code_hash, attempts FROM login_challenges
         WHERE user_id = %s AND country = %s AND used_at IS NULL AND expires_at > now() AND code_hash IS NOT NULL
         ORDER BY minted_at DESC LIMIT 1
           FOR UPDATE
        """,
        (user_id, arrival.country),
    )
    row = cur.fetchone()
    if row is None or row["attempts"] >= MAX_ATTEMPTS:
        return False
    matches = hmac.compare_digest(bytes(row["code_hash"]), _digest(row["id"], code.strip()))
    cur.execute(
        "UPDATE login_challenges SET attempts = attempts + 1, used_at = CASE WHEN %s THEN now() END WHERE id = %s",
        (matches, row["id"]),
    )
    return matches


def remember(cur: Cursor, user_id: UUID, country: str | None, arrival: Arrival | None, who: Actor) -> None:
    """Record the country of a completed login (in its transaction). A first country is
    recorded only while the user still has none: two first logins racing from two
    countries cannot both skip the step-up (the loser is refused, changing nothing)."""
    if country is None:
        return
    if arrival is None:
        cur.execute(
            "UPDATE known_countries SET last_seen_at = now() WHERE user_id = %s AND country = %s", (user_id, country)
        )
        return
    if arrival.first:
        cur.execute("SELECT 1 FROM users WHERE id = %s FOR NO KEY UPDATE", (user_id,))  # one first login at a time
        cur.execute(
            """
            INSERT INTO known_countries (user_id, country)
            SELECT %(u)s, %(c)s WHERE NOT EXISTS (SELECT 1 FROM known_countries WHERE user_id = %(u)s)
            ON CONFLICT (user_id, country) DO UPDATE SET last_seen_at = now()
            """,
            {"u": user_id, "c": country},
        )
        if cur.rowcount == 0:
            cur.execute("SELECT 1 FROM known_countries WHERE user_id = %s AND country = %s", (user_id, country))
            if cur.fetchone() is None:
                raise errors.OtpRequired(
                    "another login recorded this account's first country a moment ago: log in again"
                )
            return
    else:
        cur.execute(
            """
            INSERT INTO known_countries (user_id, country) VALUES (%s, %s)
            ON CONFLICT (user_id, country) DO UPDATE SET last_seen_at = now()
            """,
            (user_id, country),
        )
    outcome = "first_country" if arrival.first else "verified"
    audit.record(cur, who, LOGIN_NEW_COUNTRY, "user", user_id, metadata=arrival.metadata(outcome))


# -- the notification worker ------------------------------------------------------------------


def prepare_delivery(cur: Cursor, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The code e-mail's event with a freshly minted code, or None (a spent or expired
    challenge, a suspended user). A redelivery mints a new code: only the newest works."""
    try:
        challenge_id = str(UUID(str(payload["challenge_id"])))
    except (KeyError, ValueError):
        return None
    cur.execute(
        """
        SELECT c.user_id, c.country, c.expires_at, u.email, u.status
          FROM login_challenges c JOIN users u ON u.id = c.user_id
         WHERE c.id = %s AND c.used_at IS NULL AND c.expires_at > now() AND c.attempts < %s
           FOR UPDATE OF c
        """,
        (challenge_id, MAX_ATTEMPTS),
    )
    row = cur.fetchone()
    if row is None or row["status"] != "active":
        return None
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    cur.execute(
        "UPDATE login_challenges SET code_hash = %s, minted_at = clock_timestamp(), attempts = 0 WHERE id = %s",
        (_digest(challenge_id, code), challenge_id),
    )
    audit.record(
        cur, Actor.system("notifications"), LOGIN_CODE_SENT, "user", row["user_id"],
        metadata={"challenge_id": challenge_id, "country": row["country"]},
    )  # fmt: skip
    expires = row["expires_at"].strftime("%H:%M UTC")
    return {
        **payload,
        "user_id": str(row["user_id"]),
        "email": row["email"],
        "code": code,
        "expires_at": row["expires_at"],
        "subject": "Your Ledgerline sign-in code",
        "message": (
            f"Someone signed in to your Ledgerline account with your password from a country not seen "
            f"for it before ({row['country']}).\n\nIf it was you, your sign-in code is:\n\n    {code}\n\n"
            f"Send it as otp with your e-mail and password before {expires}.\n"
            "If it was not you, do not share this code: change your password now.\n"
        ),
    }


def _digest(challenge_id: object, code: str) -> bytes:
    return hashlib.sha256(f"{challenge_id}:{code}".encode()).digest()


# -- administrators ---------------------------------------------------------------------------


def list_known(cur: Cursor, user_id: UUID) -> list[KnownCountry]:
    """A user's known countries, most recently seen first (the whole set: there are at
    most as many as ISO 3166 has codes); an unknown user is 404."""
    _require_user(cur, user_id)
    cur.execute(
        """
        SELECT country, first_seen_at, last_seen_at FROM known_countries
         WHERE user_id = %s ORDER BY last_seen_at DESC, country
        """,
        (user_id,),
    )
    return [KnownCountry(r["country"], r["first_seen_at"], r["last_seen_at"]) for r in cur.fetchall()]


def clear(cur: Cursor, user_id: UUID, country: str, actor: Actor) -> None:
    """Forget one of a user's known countries (the next login from it steps up again, even
    when it was the only one: the user's placed sessions show it is not a first login);
    audited with what was forgotten. A country not known is 404 and changes nothing."""
    _require_user(cur, user_id)
    cur.execute(
        "DELETE FROM known_countries WHERE user_id = %s AND country = %s RETURNING first_seen_at, last_seen_at",
        (user_id, country),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"{country} is not a known country of this user")
    audit.record(
        cur, actor, KNOWN_COUNTRY_CLEARED, "user", user_id,
        before={"country": country, "first_seen_at": row["first_seen_at"], "last_seen_at": row["last_seen_at"]},
        metadata={"country": country},
    )  # fmt: skip


def _require_user(cur: Cursor, user_id: UUID) -> None:
    cur.execute("SELECT 1 FROM users WHERE id = %s AND role <> 'system'", (user_id,))
    if cur.fetchone() is None:
        raise errors.NotFound("no such user")
