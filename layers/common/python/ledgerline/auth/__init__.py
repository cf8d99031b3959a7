"""Identity and access: users, passwords, RS256 access tokens signed in KMS, rotating
refresh tokens, TOTP 2FA, lockout and rate limits, roles, API keys.

Submodules are imported where used (cold start): ``passwords``, ``tokens``, ``keys``,
``users``, ``sessions``, ``otp``, ``resets``, ``apikeys``, ``limits``, ``principal``,
``events``; their results are the values of ``model``.
"""
