"""TOTP (RFC 6238, pyotp) with a replay rule: a code is accepted only for a
timecode strictly greater than the last accepted one.

``pyotp.TOTP.verify`` alone accepts the same code again and again within its
window; here ``verify`` returns the matched timecode so the caller can store
it atomically (``StaffStore.accept_totp_timecode``). Design:
docs/design/staff-auth.md.
"""

from __future__ import annotations

import hmac

import pyotp

DIGITS = 6
INTERVAL_SECS = 30  # RFC 6238 default; what every authenticator app assumes
# pyotp.random_base32's default: 32 base32 characters = 160 bits, the HMAC-SHA1
# key size RFC 4226 recommends.
SEED_CHARS = 32


def new_seed() -> str:
    """A fresh base32 seed (160 bits from the OS CSPRNG)."""
    return pyotp.random_base32(SEED_CHARS)


def provisioning_uri(seed: str, username: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans."""
    return pyotp.TOTP(seed, digits=DIGITS, interval=INTERVAL_SECS).provisioning_uri(
        name=username, issuer_name=issuer
    )


def code_at(seed: str, when: float) -> str:
    """The code for ``when`` (for tests and the CLI's self-check)."""
    return pyotp.TOTP(seed, digits=DIGITS, interval=INTERVAL_SECS).at(when)


def well_formed(code: str) -> bool:
    """Exactly six ASCII digits (not fullwidth or other Unicode digits)."""
    return isinstance(code, str) and len(code) == DIGITS and code.isascii() and code.isdigit()


def verify(
    seed: str,
    code: str,
    now: float,
    last_timecode: int | None,
    valid_window: int,
) -> int | None:
    """The timecode ``code`` is valid for, or None.

    Only timecodes within ``valid_window`` steps of ``now`` *and* greater than
    ``last_timecode`` are candidates, so a code that was already used (or an
    older one) is refused. Every candidate is compared in constant time and
    all are compared, so timing does not show which step matched.
    """
    if not 0 <= valid_window <= 1:
        raise ValueError("valid_window must be 0 or 1")
    if not well_formed(code):
        return None
    totp = pyotp.TOTP(seed, digits=DIGITS, interval=INTERVAL_SECS)
    current = totp.timecode(now)
    matched: int | None = None
    given = code.encode("ascii")
    for step in range(current - valid_window, current + valid_window + 1):
        if step < 0 or (last_timecode is not None and step <= last_timecode):
            continue
        expected = totp.generate_otp(step).encode("ascii")
        if hmac.compare_digest(given, expected):
            matched = step  # the latest matching step wins
    return matched
