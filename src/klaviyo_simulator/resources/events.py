"""Events (`/api/events`): compact columns, lazily rendered records, the serving hot path.

Each event is a row of four columns (time, metric, profile, 64 random bits); everything else
about it (id, uuid, properties, attributions) is derived from those on demand. Pages are keyset
walks over sorted `(seconds << 32) | row` keys, and an unfiltered page is serialized by string
templating into one `orjson.Fragment` (a test checks it equals the dict rendering).
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import add, mul
from typing import TYPE_CHECKING, Any

import orjson

from klaviyo_simulator.model import Change, Page, Row, World
from klaviyo_simulator.paging import keyset_page
from klaviyo_simulator.query import Condition, Listing, Query, iso_seconds, seconds_window
from klaviyo_simulator.render import Renderer, sparse
from klaviyo_simulator.resources.metrics import METRIC_CUMULATIVE
from klaviyo_simulator.resources.profiles import DOMAINS, ROW_MASK, SHIFT, sorted_keys, uniforms
from klaviyo_simulator.resources.sends import EMAIL_METRICS, Sends, Target
from klaviyo_simulator.seeded import BASE62, MASK64, TWO_YEARS, frac, mix

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

EVENT_ID_MODULUS = 62**10  # < 2**63: the arithmetic stays on machine-size ints
EVENT_ID_FACTOR = 521_457_124_689_104_637  # odd, not a multiple of 31: row -> id is a bijection
EVENT_ID_OFFSET = 0x2F1D
LATE_EVENTS_AGE = 86_400  # default age of `advance(late_events=N)` events, in seconds
# 62**3 three-char digits (~12 MB once): an id costs 3 divmods instead of 10 on the serving hot path.
TRIPLETS = [a + b + c for a in BASE62 for b in BASE62 for c in BASE62]
ORDER_METRICS = frozenset({"Placed Order", "Ordered Product", "Checkout Started", "Added to Cart"})
PRODUCTS = [
    ("Trail Runner Shoe", 129.0),
    ("Merino Beanie", 34.0),
    ("Canvas Tote", 48.5),
    ("Ceramic Mug", 22.0),
    ("Linen Shirt", 79.0),
    ("Water Bottle", 29.99),
    ("Rain Jacket", 189.0),
    ("Wool Socks", 18.0),
    ("Sunglasses", 95.0),
    ("Yoga Mat", 64.0),
]


def _json(text: str) -> str:
    return orjson.dumps(text).decode()


PRODUCTS_JSON = [(_json(name), price) for name, price in PRODUCTS]
DOMAINS_JSON = [_json(d) for d in DOMAINS]
PAGES = (
    '"https://shop.example.com/"',
    '"https://shop.example.com/collections/all"',
    '"https://shop.example.com/cart"',
)
OSES = ('"iOS"', '"Android"', '"Windows"', '"macOS"')


@dataclass
class EventColumns:
    """Events as columns; rows are positions in creation order (sorted by time, except late
    events, which are created after later ones; `Events.keys` is always sorted)."""

    ts: array[int]  # epoch seconds
    metric: array[int]  # index into the metrics
    profile: array[int]  # profile row
    rand: array[int]  # 64 random bits per event: everything else about it derives from these


def event_id(row: int) -> str:
    """An 11-char alphanumeric id: a check character, then the row scrambled into 10 base-62 digits."""
    value = ((row + 1) * EVENT_ID_FACTOR + EVENT_ID_OFFSET) % EVENT_ID_MODULUS
    high, low = divmod(value, 238_328)
    high, middle = divmod(high, 238_328)
    top, upper = divmod(high, 238_328)
    return f"{BASE62[value % 61 + 1]}{BASE62[top]}{TRIPLETS[upper]}{TRIPLETS[middle]}{TRIPLETS[low]}"


def event_uuid(h: int) -> str:
    """A version-4-shaped UUID from the event's random bits."""
    x = f"{(h << 64) | ((h * 0x9E3779B97F4A7C15) & MASK64):032x}"
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-a{x[17:20]}-{x[20:]}"


def event_properties_json(h: int, metric_name: str, sends: Sends | None) -> str:
    """Properties typical of the metric as JSON text, all drawn from the event's 64 random bits `h`;
    email, SMS and form events name their message or form version (`resources/sends.py`).

    Built by templating (the serving hot path); `event_properties` parses it for the dict path,
    so both paths always agree.
    """
    head = f'{{"$event_id":"{h % 10**12}"'
    if metric_name == "Viewed Product":
        name, price = PRODUCTS_JSON[(h >> 44) % len(PRODUCTS_JSON)]
        product_id = (h >> 20) % 10**6
        return (
            f'{head},"$value":{price},"ProductName":{name},"ProductID":{product_id},"Price":{price},'
            f'"URL":"https://shop.example.com/products/{product_id}"}}'
        )
    if metric_name in ORDER_METRICS:
        items = [PRODUCTS_JSON[(h >> (44 + 4 * k)) % len(PRODUCTS_JSON)] for k in range(1 + (h >> 40) % 3)]
        value = round(sum(price for _, price in items), 2)
        names = ",".join(n for n, _ in items)
        lines = ",".join(f'{{"ProductName":{n},"ItemPrice":{p},"Quantity":1}}' for n, p in items)
        order = f',"OrderId":"#{(h >> 12) % 10**7}"' if metric_name == "Placed Order" else ""
        return f'{head},"$value":{value},"ItemNames":[{names}],"Items":[{lines}],"Currency":"USD"{order}}}'
    target = sends.message(metric_name, h) if sends is not None else None
    message = target.properties_json if target else f',"$message":"{(h >> 30) % 10**6:06d}"'
    if metric_name in EMAIL_METRICS:
        url = ',"URL":"https://shop.example.com/collections/new"' if metric_name == "Clicked Email" else ""
        domain = DOMAINS_JSON[(h >> 24) % len(DOMAINS_JSON)]
        return f'{head}{message},"Subject":"Something new for you","Email Domain":{domain}{url},"$value":0}}'
    if "SMS" in metric_name:
        return f'{head},"Message Name":"SMS promo"{message},"Carrier Deliverability Status":"DELIVERED"}}'
    form = sends.form(metric_name, h) if sends is not None else None
    if form is not None:
        return f"{head}{form.properties_json}}}"
    return f'{head},"page":{PAGES[(h >> 16) % 3]},"$is_session_activity":true,"os":{OSES[(h >> 20) % 4]}}}'


def _as_us(cond: Condition) -> Condition:
    """`timestamp` conditions (seconds) as `datetime` microseconds."""
    if cond.field == "timestamp":
        return Condition("datetime", cond.op, int(cond.value * 1_000_000))
    return cond


class Events:
    """The events kind: columns, pages, rendering, `advance(events=N)`."""

    types: tuple[str, ...] = ("event",)
    # event properties name the generated campaigns, flow messages and form versions
    requires: tuple[str, ...] = ("profile", "campaign", "flow", "form", "metric")
    # late_events: created now with a `datetime` late_events_age seconds ago (default one day).
    advance_keys = frozenset({"events", "late_events", "late_events_age"})

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cols = EventColumns(array("q"), array("B"), array("i"), array("Q"))
        self.keys = array("q")  # sorted (seconds << 32) | row
        self.sends: Sends | None = None  # frozen at generation (resources/sends.py)
        self._campaigns: list[Row] = []  # campaigns attributions pick from, frozen at generation

    @property
    def count(self) -> int:
        return len(self.cols.ts)

    def latest(self) -> int:
        """The latest event second stored (0 without events)."""
        return self.keys[-1] >> SHIFT if self.keys else 0

    # ------------------------------------------------------------ generation

    def generate(self, world: World) -> None:
        """Density grows linearly towards now (sqrt of a uniform); a few very active profiles.

        Draws from the world's stream right after the profiles (C-level maps: a million events
        take about a second).
        """
        rng, start = world.rng, world.now - TWO_YEARS
        n_events = world.sizes.events
        # sorting the uniforms first: sqrt and the affine map keep the order, ints keep it non-decreasing
        offsets = map(mul, repeat(float(TWO_YEARS)), map(math.sqrt, sorted(uniforms(rng, n_events))))
        times = array("q", map(int, map(add, repeat(float(start)), offsets)))
        scaled = map(mul, uniforms(rng, n_events), repeat(METRIC_CUMULATIVE[-1]))
        metric_col = array("B", map(partial(bisect.bisect_right, METRIC_CUMULATIVE), scaled))
        # among the profiles created before the event
        created_before = map(partial(bisect.bisect_right, self.store.profiles.created_at_generation), times)
        skew = map(pow, uniforms(rng, n_events), repeat(1.6))
        profile_col = array("i", map(int, map(mul, created_before, skew)))
        bits = rng.getrandbits
        event_rand = array("Q", [bits(64) for _ in range(n_events)])
        self.cols = EventColumns(times, metric_col, profile_col, event_rand)
        self.keys = array("q", sorted_keys(times))
        self.sends = Sends(self.store)
        self._campaigns = list(self.store.records_view("campaign"))

    # ------------------------------------------------------------ serving

    def check(self, rtype: str, query: Query, collection: bool) -> None:
        return None

    def default_sort(self, rtype: str, nested: bool) -> str:
        return "datetime"

    def page(self, rtype: str, listing: Listing) -> Page:
        conds = listing.conditions
        window = [_as_us(c) for c in conds if c.field in ("datetime", "timestamp") and c.op != "has"]
        lo_s, hi_s = seconds_window(window, "datetime")
        metric_ids = [m.id for m in self.store.records_view("metric")]
        checks: list[Callable[[int], bool]] = []
        for cond in conds:
            if cond.field == "metric_id":
                values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
                wanted = {metric_ids.index(v) for v in values if v in metric_ids}
                checks.append(lambda row, w=wanted: self.cols.metric[row] in w)  # type: ignore[misc]
            elif cond.field == "profile_id":
                target = self.store.profile_row(cond.value)
                checks.append(lambda row, t=target: self.cols.profile[row] == t)  # type: ignore[misc]
            # has(profile) / has(metric): every generated event has both.

        def accept(key: int) -> bool:
            row = key & ROW_MASK
            return all(check(row) for check in checks)

        keys, more = keyset_page(
            self.keys,
            after=listing.after,
            desc=listing.descending,
            size=listing.size or len(self.keys) + 1,
            accept=accept if checks else None,
            lo=None if lo_s == float("-inf") else int(lo_s) << SHIFT,
            hi=None if hi_s == float("inf") else int(hi_s) << SHIFT,
        )
        return Page([k & ROW_MASK for k in keys], list(keys), more)

    def attributes(self, row: int) -> dict[str, Any]:
        ts, h = self.cols.ts[row], self.cols.rand[row]
        metric_name = self.store.records_view("metric")[self.cols.metric[row]].attributes["name"]
        properties = orjson.loads(event_properties_json(h, metric_name, self.sends))
        return {
            "timestamp": ts,
            "event_properties": properties,
            "datetime": iso_seconds(ts),
            "uuid": event_uuid(h),
        }

    def render(self, rtype: str, page: Page, view: Renderer, query: Query) -> list[Any] | orjson.Fragment:
        if "event" in query.fields:
            return [self.resource(row, view) for row in page.rows]
        return self.fragment(page.rows, view)

    def find(self, rtype: str, rid: str) -> Any | None:
        return None  # the simulator serves no single-event GET

    def render_one(self, rtype: str, item: Any, view: Renderer, query: Query) -> dict[str, Any]:
        return self.resource(item, view)

    def resource(self, row: int, view: Renderer) -> dict[str, Any]:
        """One event as a dict (the sparse-fieldset path)."""
        store = self.store
        eid = event_id(row)
        metric = store.records_view("metric")[self.cols.metric[row]]
        link = f"{view.base}/api/events/{eid}/"
        attributes = self.attributes(row)
        wanted = view.fields.get("event")
        if wanted is not None:
            attributes = sparse(attributes, wanted)
        attributions = self._attribution_ids(row)
        rel_attr: dict[str, Any] = {
            "links": {"self": f"{link}relationships/attributions/", "related": f"{link}attributions/"}
        }
        if "attributions" in view.includes:
            rel_attr = {"data": [{"type": "attribution", "id": a} for a in attributions], **rel_attr}
        relationships: dict[str, Any] = {
            "metric": {
                "data": {"type": "metric", "id": metric.id},
                "links": {"self": f"{link}relationships/metric/", "related": f"{link}metric/"},
            },
            "attributions": rel_attr,
        }
        if store.profile_count:
            profile_row = self.cols.profile[row]
            relationships["profile"] = {
                "data": {"type": "profile", "id": store.profile_id(profile_row)},
                "links": {"self": f"{link}relationships/profile/", "related": f"{link}profile/"},
            }
            if "profile" in view.includes:
                view.include(store.profiles.resource(profile_row, view, nested=True))
        if "metric" in view.includes:
            view.include(view.row(metric, nested=True))
        if "attributions" in view.includes:
            for index, aid in enumerate(attributions):
                view.include(self._attribution(aid, eid, row, index, view))
        return {"type": "event", "id": eid, "attributes": attributes, "relationships": relationships,
                "links": {"self": link}}  # fmt: skip

    def fragment(self, rows: list[int], view: Renderer) -> orjson.Fragment:
        """`[resource(row) ...]` pre-serialized by string templating: the serving hot path."""
        store = self.store
        cols = self.cols
        ts_col, rand_col, metric_col, profile_col = cols.ts, cols.rand, cols.metric, cols.profile
        metrics = [(m, m.id, m.attributes["name"]) for m in store.records_view("metric")]
        sends = self.sends
        include_attributions = "attributions" in view.includes
        include_profile = "profile" in view.includes
        include_metric = "metric" in view.includes
        has_profiles = store.profile_count > 0
        included = view.included
        prefix = f"{view.base_json}/api/events/"
        properties, uuid, iso, profile_id = event_properties_json, event_uuid, iso_seconds, store.profile_id
        out = []
        for row in rows:
            eid = event_id(row)
            metric, metric_id, metric_name = metrics[metric_col[row]]
            ts, h = ts_col[row], rand_col[row]
            link = f"{prefix}{eid}/"
            attribution_data = ""
            if include_attributions:
                attributions = self._attribution_ids(row)
                items = ",".join(f'{{"type":"attribution","id":"{a}"}}' for a in attributions)
                attribution_data = f'"data":[{items}],'
                for index, aid in enumerate(attributions):
                    view.include(self._attribution(aid, eid, row, index, view))
            profile = ""
            if has_profiles:
                profile_row = profile_col[row]
                pid = profile_id(profile_row)
                profile = (
                    f'"profile":{{"data":{{"type":"profile","id":"{pid}"}},'
                    f'"links":{{"self":"{link}relationships/profile/","related":"{link}profile/"}}}},'
                )
                if include_profile and ("profile", pid) not in included:
                    view.include(store.profiles.resource(profile_row, view, nested=True))
            if include_metric and ("metric", metric_id) not in included:
                view.include(view.row(metric, nested=True))
            out.append(
                f'{{"type":"event","id":"{eid}","attributes":{{"timestamp":{ts},'
                f'"event_properties":{properties(h, metric_name, sends)},'
                f'"datetime":"{iso(ts)}","uuid":"{uuid(h)}"}},"relationships":{{{profile}'
                f'"metric":{{"data":{{"type":"metric","id":"{metric_id}"}},'
                f'"links":{{"self":"{link}relationships/metric/","related":"{link}metric/"}}}},'
                f'"attributions":{{{attribution_data}"links":{{"self":"{link}relationships/attributions/",'
                f'"related":"{link}attributions/"}}}}}},"links":{{"self":"{link}"}}}}'
            )
        return orjson.Fragment("[" + ",".join(out) + "]")

    def conversion(self, row: int) -> Target | None:
        """The message a Placed Order event is attributed to: ~30 % a campaign's first message,
        ~20 % a flow message, else none (what its `attributions` say)."""
        name = self.store.records_view("metric")[self.cols.metric[row]].attributes["name"]
        if name != "Placed Order":
            return None
        digit = (self.cols.rand[row] >> 56) % 10
        if digit < 3 and self._campaigns:
            campaign = self._campaigns[mix(self.store.seed, 50, row, 0) % len(self._campaigns)]
            message_ids = campaign.related_ids("campaign-messages")
            if not message_ids:
                return None
            channel = campaign.hidden.get("messages.channel", "email")
            return Target("campaign", campaign.id, message_ids[0], channel, campaign.attributes["name"], "")
        flows = self.sends.flow_messages if self.sends is not None else []
        if digit < 5 and flows:
            return flows[mix(self.store.seed, 51, row) % len(flows)]
        return None

    def _attribution_ids(self, row: int) -> list[str]:
        return [] if self.conversion(row) is None else [f"{event_id(row)}-1"]

    def _attribution(self, aid: str, eid: str, row: int, index: int, view: Renderer) -> dict[str, Any]:
        target = self.conversion(row)
        assert target is not None
        rels: dict[str, tuple[str, Any]] = {
            "event": ("event", eid),
            target.kind: (target.kind, target.parent_id),
            f"{target.kind}-message": (f"{target.kind}-message", target.message_id),
        }
        return view.resource("attribution", aid, None, rels)

    # ------------------------------------------------------------ time moves

    def advance(self, change: Change) -> dict[str, Any]:
        """New events stamped now (a quarter at the latest stored second with `boundary`), and late
        events: created now but dated `late_events_age` seconds ago (Klaviyo makes some events
        visible days after their `datetime`)."""
        n_events, n_late = change.count("events"), change.count("late_events")
        out: dict[str, Any] = {}
        if n_events:
            last = self.latest() if self.count else change.now
            created = []
            for k in range(n_events):
                stamp = last if change.at_boundary and k < max(1, n_events // 4) else change.now
                if change.at_boundary:
                    change.boundary["events"] = iso_seconds(last)
                self._append(stamp, change.salt, k)
                created.append(event_id(self.count - 1))
            out["events"] = created
        if n_late:
            stamp = change.now - (change.count("late_events_age") or LATE_EVENTS_AGE)
            late = []
            for k in range(n_late):
                self._append(stamp, change.salt, n_events + k)
                late.append(event_id(self.count - 1))
            out["late_events"] = late
        return out

    def _append(self, stamp: int, salt: int, k: int) -> None:
        row = self.count
        u = frac(salt, 5, k) * METRIC_CUMULATIVE[-1]
        self.cols.ts.append(stamp)
        self.cols.metric.append(bisect.bisect_right(METRIC_CUMULATIVE, u))
        self.cols.profile.append(mix(salt, 6, k) % max(1, self.store.profile_count))
        self.cols.rand.append(mix(salt, 11, k))
        key = (stamp << SHIFT) | row
        if self.keys and key < self.keys[-1]:
            bisect.insort(self.keys, key)  # a late event: keyed among the earlier ones
        else:
            self.keys.append(key)
