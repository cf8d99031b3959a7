"""A refresh token's successor is derived, not stored: it must need a key the database
does not hold, so that reading the sessions table and a retired token is not enough."""

from ledgerline.auth import sessions
from ledgerline.crypto import blind


def test_the_successor_needs_the_server_key_as_well_as_the_sessions_key():
    session_key, token = b"k" * 32, "rt1_an-old-token"
    try:
        blind.configure(lambda: b"a" * 32)
        first = sessions._successor(session_key, token)
        assert sessions._successor(session_key, token) == first, "a retry is answered the same successor"
        blind.configure(lambda: b"b" * 32)
        assert sessions._successor(session_key, token) != first, "without the server key it cannot be computed"
    finally:
        blind.configure(None)
    assert first.startswith(sessions.REFRESH_PREFIX)
