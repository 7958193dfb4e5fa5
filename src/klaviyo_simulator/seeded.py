"""Seeded hashing: the simulator's only source of randomness besides one `random.Random(seed)`.

Every small record is a pure function of `(seed, salt, index)` through `mix`, so a collection can
be generated in any order and the same seed always gives the same data.
"""

from __future__ import annotations

from typing import Any

MASK64 = (1 << 64) - 1
TWO_YEARS = 2 * 365 * 86_400
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 rounds)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = ((x ^ (part & MASK64)) * 0xBF58476D1CE4E5B9) & MASK64
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & MASK64
        x ^= x >> 29
    return x


def frac(*parts: int) -> float:
    """A uniform float in [0, 1) from a hash."""
    return mix(*parts) / 18446744073709551616.0


def pick(options: list[Any] | tuple[Any, ...], *parts: int) -> Any:
    return options[mix(*parts) % len(options)]


def between(seed: int, salt: int, i: int, lo: int, hi: int) -> int:
    """A hashed integer in [lo, max(hi, lo)]."""
    return lo + int((max(hi, lo) - lo) * frac(seed, salt, i))


def short_id(*parts: int, length: int = 6) -> str:
    """Klaviyo-style short alphanumeric id (lists, metrics, flows, templates, segments)."""
    x = mix(*parts)
    chars = []
    for _ in range(length):
        x, rem = divmod(x, 62)
        chars.append(BASE62[rem])
    return "".join(chars)


def ulid(epoch_seconds: int, *parts: int) -> str:
    """A 26-char ULID: 48-bit millisecond time + 80 hashed bits (campaigns, campaign messages)."""
    value = ((epoch_seconds * 1000) << 80) | (mix(*parts) << 16) | (mix(*parts, 7) & 0xFFFF)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def uuid_text(*parts: int) -> str:
    hexed = f"{mix(*parts):016x}{mix(*parts, 1):016x}"
    return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:32]}"
