"""Query semantics of Klaviyo's JSON:API: filter grammar, value literals, sort, page size, cursors.

The filter grammar (Klaviyo "filtering" docs): `op(field,value)` terms joined by commas (AND) or
wrapped in `and(...)`; values are quoted strings ('..' or ".."), bare booleans / numbers /
datetimes, bracketed lists, or nothing (`has(field)`). Each endpoint allows only the fields,
operators and value shapes of its `x-klaviyo-filters` (see spec.py); anything else is a 400.
Datetime values are held as integer microseconds since the epoch (UTC).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from klaviyo_simulator.spec import EndpointRule, FilterRule

SUPPORTED_OPERATORS = frozenset(
    {
        "equals",
        "any",
        "greater-than",
        "greater-or-equal",
        "less-than",
        "less-or-equal",
        "contains",
        "starts-with",
        "ends-with",
        "has",
    }
)
RANGE_OPERATORS = frozenset({"greater-than", "greater-or-equal", "less-than", "less-or-equal"})

# Klaviyo's datetimes guide: ISO 8601 with uppercase letters, `T` or a space, optional fraction, an
# offset `Z` / `+03:00`, or date-only. ISO 8601's basic offset `+0000` (no colon) is accepted too:
# Airbyte's connector (2.11+) sends it in every filter and Klaviyo answers them.
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_FIELD = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.$-]*$")


class QueryError(Exception):
    """A request the real API answers with 400 `invalid`, naming the query parameter."""

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(detail)
        self.parameter = parameter
        self.detail = detail


@dataclass(frozen=True)
class Condition:
    """One filter term. `value` is None for `has`, a tuple for list-valued operators."""

    field: str
    op: str
    value: Any


@dataclass
class Query:
    """The validated query of one request."""

    conditions: list[Condition]
    sort: tuple[str, bool] | None
    page_size: int
    cursor: str | None
    fields: dict[str, list[str]]
    includes: list[str]
    additional: dict[str, frozenset[str]]


@dataclass(frozen=True)
class Listing:
    """What one page of a collection is: filter, order, keyset position, size, and the parent row."""

    conditions: list[Condition]
    sort: str
    descending: bool  # the walking direction (a `prev` cursor walks against the sort)
    after: Any  # keyset key of the last row seen (None: from the start)
    size: int | None  # None: the endpoint has no paging, every row in one page
    parent: Any = None  # the parent `Row` of a nested collection (`/api/lists/{id}/profiles`)


def parse_datetime_us(text: str) -> int:
    """An ISO-8601 datetime in one of the forms Klaviyo accepts -> epoch microseconds (naive = UTC)."""
    if not _DATETIME.match(text):
        raise ValueError(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_HOURS: dict[int, str] = {}


def iso_seconds(epoch_seconds: int) -> str:
    """Epoch seconds -> `2024-09-03T10:00:00+00:00`, the format Klaviyo emits (hour prefix cached)."""
    hour, rest = divmod(epoch_seconds, 3600)
    prefix = _HOURS.get(hour)
    if prefix is None:
        prefix = _HOURS[hour] = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:")
    minute, second = divmod(rest, 60)
    return f"{prefix}{minute:02d}:{second:02d}+00:00"


# ---------------------------------------------------------------- filter grammar


class _Parser:
    """Recursive-descent parser over the raw filter string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> QueryError:
        return QueryError("filter", f"Invalid filter provided: {message} (at position {self.pos}).")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "end of input"
            raise self.fail(f"expected {char!r}, found {found}")
        self.pos += 1

    def terms(self) -> list[tuple[str, str, Any]]:
        out = self.term()
        while self.peek() == ",":
            self.pos += 1
            out += self.term()
        return out

    def name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "(),[]'\"":
            self.pos += 1
        return self.text[start : self.pos].strip()

    def term(self) -> list[tuple[str, str, Any]]:
        op = self.name()
        if not op:
            raise self.fail("expected an operator")
        self.expect("(")
        if op == "and":
            inner = self.terms()
            self.expect(")")
            return inner
        if op in ("or", "not"):
            raise QueryError("filter", f"Invalid filter provided: the '{op}' operator is not supported.")
        if op not in SUPPORTED_OPERATORS:
            raise QueryError("filter", f"Invalid filter provided: unknown operator '{op}'.")
        field = self.name()
        if not _FIELD.match(field):
            raise self.fail(f"invalid field name {field!r}")
        value: Any = _NO_VALUE
        if self.peek() == ",":
            self.pos += 1
            value = self.value()
        self.expect(")")
        return [(field, op, value)]

    def value(self) -> Any:
        char = self.peek()
        if char in ("'", '"'):
            end = self.text.find(char, self.pos + 1)
            if end < 0:
                raise self.fail("unterminated string")
            literal = _Quoted(self.text[self.pos + 1 : end])
            self.pos = end + 1
            return literal
        if char == "[":
            self.pos += 1
            items: list[Any] = []
            if self.peek() != "]":
                items.append(self.value())
                while self.peek() == ",":
                    self.pos += 1
                    items.append(self.value())
            self.expect("]")
            return items
        bare = self.name()
        if not bare:
            raise self.fail("expected a value")
        return _Bare(bare)


class _Quoted(str):
    """A quoted string literal."""


class _Bare(str):
    """An unquoted literal (boolean, number, datetime)."""


_NO_VALUE = object()


def _typed_scalar(field: str, rule: FilterRule, raw: Any) -> Any:
    kind = rule.value_type
    if isinstance(raw, list):
        raise QueryError("filter", f"Invalid filter provided: nested lists are not allowed for '{field}'.")
    if kind == "date-time":
        if isinstance(raw, _Quoted):
            raise QueryError(
                "filter", f"Invalid filter provided: datetime values for '{field}' must not be quoted."
            )
        try:
            return parse_datetime_us(raw)
        except ValueError:
            raise QueryError(
                "filter", f"Invalid filter provided: '{raw}' is not a valid datetime for '{field}'."
            ) from None
    if kind == "number":
        if isinstance(raw, _Quoted) or not _NUMBER.match(raw):
            raise QueryError(
                "filter", f"Invalid filter provided: '{raw}' is not a valid number for '{field}'."
            )
        return float(raw) if "." in raw else int(raw)
    if kind == "boolean":
        if isinstance(raw, _Quoted) or raw not in ("true", "false"):
            raise QueryError(
                "filter", f"Invalid filter provided: '{raw}' is not a valid boolean for '{field}'."
            )
        return raw == "true"
    if not isinstance(raw, _Quoted):
        raise QueryError("filter", f"Invalid filter provided: string values for '{field}' must be quoted.")
    if rule.enum and str(raw) not in rule.enum:
        allowed = ", ".join(rule.enum)
        raise QueryError(
            "filter", f"Invalid filter provided: '{raw}' is not a valid value for '{field}' ({allowed})."
        )
    return str(raw)


def parse_filter(text: str, rule: EndpointRule) -> list[Condition]:
    """Parse and validate `filter` against the endpoint's allowed fields, operators and shapes."""
    if not text.strip():
        raise QueryError("filter", "Invalid filter provided: empty filter.")
    parser = _Parser(text)
    raw_terms = parser.terms()
    if parser.pos != len(text):
        raise parser.fail("unexpected trailing input")
    out: list[Condition] = []
    for field, op, raw in raw_terms:
        frule = rule.filters.get(field)
        if frule is None:
            raise QueryError(
                "filter", f"Invalid filter provided: '{field}' is not a filterable field for this endpoint."
            )
        if op not in frule.operators:
            raise QueryError(
                "filter", f"Invalid filter provided: operator '{op}' is not allowed for field '{field}'."
            )
        if raw is _NO_VALUE:
            if op not in frule.none:
                raise QueryError(
                    "filter", f"Invalid filter provided: operator '{op}' on '{field}' needs a value."
                )
            out.append(Condition(field, op, None))
        elif isinstance(raw, list):
            if op not in frule.lists:
                raise QueryError(
                    "filter", f"Invalid filter provided: operator '{op}' on '{field}' does not take a list."
                )
            out.append(Condition(field, op, tuple(_typed_scalar(field, frule, item) for item in raw)))
        else:
            if op not in frule.single:
                shape = "a list" if op in frule.lists else "no value"
                raise QueryError(
                    "filter", f"Invalid filter provided: operator '{op}' on '{field}' takes {shape}."
                )
            out.append(Condition(field, op, _typed_scalar(field, frule, raw)))
    return out


def matches(cond: Condition, value: Any) -> bool:
    """Does a record's field value satisfy one condition? (datetimes as epoch microseconds)."""
    op, want = cond.op, cond.value
    if op == "has":
        return value is not None and value != []
    if isinstance(value, list):  # multi-valued field (e.g. list_suppressions.*): any element matches
        return any(matches(cond, item) for item in value)
    if op == "equals":
        return value in want if isinstance(want, tuple) else value == want
    if op == "any":
        return value in want
    if value is None:
        return False
    if op == "greater-than":
        return bool(value > want)
    if op == "greater-or-equal":
        return bool(value >= want)
    if op == "less-than":
        return bool(value < want)
    if op == "less-or-equal":
        return bool(value <= want)
    if op == "contains":
        return isinstance(value, str) and want in value
    if op == "starts-with":
        return isinstance(value, str) and value.startswith(want)
    if op == "ends-with":
        return isinstance(value, str) and value.endswith(want)
    return False


def seconds_window(conds: list[Condition], field: str) -> tuple[float, float]:
    """Half-open window [lo, hi) in whole units for range conditions on `field` (values in us).

    Record values are whole seconds, so every bound maps exactly onto an integer second.
    """
    lo, hi = float("-inf"), float("inf")
    for cond in conds:
        if cond.field != field or cond.op not in RANGE_OPERATORS:
            continue
        value_us = cond.value
        if cond.op == "greater-than":
            lo = max(lo, value_us // 1_000_000 + 1)
        elif cond.op == "greater-or-equal":
            lo = max(lo, -((-value_us) // 1_000_000))
        elif cond.op == "less-than":
            hi = min(hi, -((-value_us) // 1_000_000))
        else:
            hi = min(hi, value_us // 1_000_000 + 1)
    return lo, hi


# ---------------------------------------------------------------- sort, page size, lists


def parse_sort(raw: str | None, rule: EndpointRule) -> tuple[str, bool] | None:
    """`sort=-updated` -> ("updated", True). None when absent."""
    if raw is None:
        return None
    name = raw[1:] if raw.startswith("-") else raw
    if not raw or name not in rule.sorts:
        allowed = ", ".join(sorted(rule.sorts)) or "none"
        raise QueryError("sort", f"'{raw}' is not a valid sort field for this endpoint. Allowed: {allowed}.")
    return name, raw.startswith("-")


def parse_page_size(raw: str | None, rule: EndpointRule, fixed: int) -> int:
    if raw is None:
        return rule.page_size.default if rule.page_size else fixed
    if rule.page_size is None:
        raise QueryError("page[size]", "page[size] is not supported by this endpoint.")
    size = rule.page_size
    if not re.fullmatch(r"\d+", raw) or not size.minimum <= int(raw) <= size.maximum:
        raise QueryError(
            "page[size]",
            f"Invalid page size '{raw}': must be an integer from {size.minimum} to {size.maximum}.",
        )
    return int(raw)


def parse_list(raw: str | None, allowed: frozenset[str], parameter: str) -> list[str]:
    """Comma-separated `fields[...]` / `include` / `additional-fields[...]` values, validated."""
    if raw is None:
        return []
    values = raw.split(",")
    for value in values:
        if value not in allowed:
            options = ", ".join(sorted(allowed))
            raise QueryError(
                parameter, f"'{value}' is not a valid value for {parameter}. Allowed: {options}."
            )
    return values


# ---------------------------------------------------------------- cursors


class CursorCodec:
    """Opaque, signed page cursors: the sort spec and the last row's sort key and id."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()[:16]

    def encode(self, sort: str, key: Any) -> str:
        payload = orjson.dumps({"s": sort, "k": key})
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._sign(payload)}"

    def decode(self, cursor: str, sort: str) -> Any:
        try:
            body, signature = cursor.rsplit(".", 1)
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("signature")
            data = orjson.loads(payload)
            if data["s"] != sort:
                raise ValueError("sort")
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise QueryError("page[cursor]", "Invalid cursor provided.") from None
        return data["k"]
