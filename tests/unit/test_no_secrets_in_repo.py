"""No live credential is ever committed: scan every file git knows for key-shaped text.

A line that must hold a key-shaped fake (a test fixture) carries the marker
``test-fixture: not a real secret`` on the same line; nothing else is exempt.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "test-fixture: not a real secret"
MAX_BYTES = 2_000_000

PATTERNS = {
    "Stripe/Paystack live secret key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}"),
    "Stripe webhook secret": re.compile(r"\bwhsec_[0-9A-Za-z+/=_-]{24,}"),
    "Flutterwave secret key": re.compile(r"FLWSECK(?:_TEST)?-[0-9a-f]{32}-X"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws_?secret_?access_?key\s*[=:]\s*[\"']?[0-9A-Za-z/+]{40}\b"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
    "GitHub token": re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[0-9A-Za-z]{36}\b|\bgithub_pat_[0-9A-Za-z_]{60,}"),
    "Slack token": re.compile(r"\bxox[baprs]-[0-9A-Za-z-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
}
# Tests build throwaway connection URLs (expected values of URL builders); anywhere else a
# URL with a password in it is a leaked credential.
OUTSIDE_TESTS = {
    "database URL with a password": re.compile(
        r"postgres(?:ql)?://[^:/\s\"']+:[^@/\s\"'{}$]{8,}@(?!localhost|127\.0\.0\.1)"
    ),
}


def findings(text: str, *, test_file: bool = False) -> list[tuple[int, str]]:
    patterns = PATTERNS if test_file else {**PATTERNS, **OUTSIDE_TESTS}
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if MARKER in line:
            continue
        out += [(number, name) for name, pattern in patterns.items() if pattern.search(line)]
    return out


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_the_repository_holds_no_live_keys():
    problems = []
    files = repository_files()
    assert len(files) > 20, "git ls-files found almost nothing: the scan would prove nothing"
    for path in files:
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        relative = path.relative_to(ROOT)
        for line, name in findings(data.decode("utf-8", errors="replace"), test_file=relative.parts[0] == "tests"):
            problems.append(f"{relative}:{line}: looks like a {name}")
    assert not problems, "remove these and rotate the keys:\n" + "\n".join(problems)


# The fakes below are assembled at run time so that this file itself stays clean.
@pytest.mark.parametrize(
    "fake",
    [
        "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "AKIA" + "IOSFODNN7EXAMPLE",
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "-----BEGIN " + "PRIVATE KEY-----",
        "-----BEGIN RSA " + "PRIVATE KEY-----",
        "ghp_" + "a" * 36,
        "FLWSECK" + "-" + "0" * 32 + "-X",
        "postgresql://ledgerline:" + "s3cr3tpassw0rd@db.example.com/ledgerline",
    ],
)
def test_the_scanner_recognises_live_keys(fake):
    assert findings(f"value = {fake!r}")


@pytest.mark.parametrize(
    "harmless",
    [
        "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc",  # Stripe's test mode keys are not live
        '"sk_test_" + secrets.token_hex(20)',
        "AKIA[0-9A-Z]{16}",
        "postgresql://ledgerline_app:@/ledgerline?host=/tmp",
        "whsec_short",
    ],
)
def test_the_scanner_leaves_harmless_text_alone(harmless):
    assert not findings(harmless)


def test_a_marked_fixture_line_is_exempt():
    assert not findings("sk_" + "live_" + "x" * 24 + "  # " + MARKER)


def test_connection_urls_with_passwords_are_flagged_outside_tests_only():
    line = "url = 'postgresql://ledgerline:" + "s3cr3tpassw0rd@db.example.com/ll'"
    assert findings(line)
    assert not findings(line, test_file=True)
