"""No account enumeration by answer or by time: registration and the password-reset
request answer a taken (known) and a free (unknown) address with the same status and
body, and in comparable time.

"Comparable" is measured, not assumed: N (or N_RESETS) requests of each kind, interleaved so that the
load of this shared machine falls on both alike, after a warm-up of each path; the two
medians must be within ``TOLERANCE`` of each other (a ratio, not a wall-clock limit).
Registration hashes the password in both paths (argon2id, the bulk of its time): a taken
path that skipped the hash would answer several times faster and fail here.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

PASSWORD = "correct horse battery staple 9"
N = 15  # registrations of each kind, after one warm-up each (each hashes: about a second here)
N_RESETS = 41  # reset requests are fast (tens of ms): more of them steady the median
TOLERANCE = 1.25  # the slower median may be at most 25 % above the faster one


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = call()
    return time.perf_counter() - started, response


def medians(first: Callable[[], Any], second: Callable[[], Any], n: int = N) -> tuple[float, float, list[Any]]:
    """The medians of ``n`` timed calls of each, interleaved; and every response."""
    first(), second()  # warm-up: imports, connections, the dummy hash
    times: tuple[list[float], list[float]] = ([], [])
    responses = []
    for i in range(2 * n):
        # Alternate which goes first, so neither always follows the other.
        which = (i + i // 2) % 2
        elapsed, response = timed(first if which == 0 else second)
        times[which].append(elapsed)
        responses.append((which, response))
    return statistics.median(times[0]), statistics.median(times[1]), responses


def alike(responses: list[Any]) -> None:
    shapes = {(r.status_code, r.text, r.headers.get("Content-Type")) for _, r in responses}
    assert len(shapes) == 1, f"the answers differ: {shapes}"


def test_registration_answers_a_taken_and_a_free_address_alike_and_in_comparable_time(client, make_user):
    taken = make_user()["email"]

    def register(email: str) -> Any:
        return client.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Ada Obi"})

    taken_median, free_median, responses = medians(
        lambda: register(taken), lambda: register(f"free-{uuid.uuid4().hex[:10]}@example.test")
    )

    alike(responses)
    assert responses[0][1].status_code == 202 and responses[0][1].json() == {"status": "pending_verification"}
    ratio = max(taken_median, free_median) / min(taken_median, free_median)
    print(f"register medians: taken {taken_median * 1000:.1f} ms, free {free_median * 1000:.1f} ms, ratio {ratio:.3f}")
    assert ratio <= TOLERANCE, (taken_median, free_median)


def test_a_reset_request_answers_a_known_and_an_unknown_address_alike_and_in_comparable_time(client, make_user):
    known = make_user()["email"]

    def request(email: str) -> Any:
        return client.post("/v1/auth/password-reset/request", json={"email": email})

    known_median, unknown_median, responses = medians(
        lambda: request(known), lambda: request(f"nobody-{uuid.uuid4().hex[:10]}@example.test"), N_RESETS
    )

    alike(responses)
    assert responses[0][1].status_code == 202
    ratio = max(known_median, unknown_median) / min(known_median, unknown_median)
    print(
        f"reset medians: known {known_median * 1000:.1f} ms, unknown {unknown_median * 1000:.1f} ms, ratio {ratio:.3f}"
    )
    assert ratio <= TOLERANCE, (known_median, unknown_median)
