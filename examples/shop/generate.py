"""Seeded generator of raw files for the ``shop`` example project.

Writes, relative to ``--out`` (default: ``data/`` next to this file):

- ``customers.csv``            ~N/20 customers
- ``orders/orders_<k>.csv``   one file per batch (a 30-day window each), N orders in total
- ``tickets.ndjson``           ~N/10 support tickets
- ``labels.csv``               churn labels for training: 2 rows per customer (customer_id,
                               event_timestamp, churned_within_30d), in no particular order
- ``_manifest.json``           parameters and the exact number of every injected defect

Everything is vectorised with numpy and written in chunks with pyarrow, so memory stays
bounded by ``--chunk-rows`` (plus a few numeric arrays per customer): 20 million orders
are fine on a laptop. The output is a pure function of (seed, orders, batches, chunk rows).

Defects are injected at small, documented rates (``ORDER_DEFECTS``, ``CUSTOMER_DEFECTS``,
``TICKET_DEFECTS``). Each row carries at most one defect, drawn with a single categorical
draw per row, so the counts in the manifest are exact.

Usage::

    python generate.py --orders 20000             # initial load: customers, tickets, batches 1..3
    python generate.py --orders 2000 --batch 4    # increment: orders_004.csv, later timestamps
                                                  # plus status updates of existing orders
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

PROJECT_DIR = Path(__file__).resolve().parent

DAY = 86_400
HOUR = 3_600
#: first instant of batch 1 (UTC, seconds since the epoch): 2024-01-01 00:00:00
START = int(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))
#: every batch (one orders file) covers a 30-day window
BATCH_DAYS = 30
DEFAULT_BATCHES = 3
DEFAULT_CHUNK_ROWS = 250_000

# Random streams: every (stream, batch, chunk) has its own seed sequence, so a chunk can be
# regenerated on its own (the increment mode does that to update existing orders).
_CUSTOMERS, _ORDERS, _TICKETS, _UPDATES, _LABELS = 1, 2, 3, 4, 5

COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "IE", "US", "GB")
COUNTRY_WEIGHTS = (0.22, 0.14, 0.08, 0.08, 0.08, 0.03, 0.27, 0.10)
CURRENCY_OF_COUNTRY = ("EUR", "EUR", "EUR", "EUR", "EUR", "EUR", "USD", "GBP")
BAD_COUNTRIES = ("XX", "Germany", "")
DOMAINS = ("example.com", "mail.test", "shop.example", "post.example.org")
FIRST_NAMES = (
    "Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas",
    "Klara", "Liam", "Mia", "Noah", "Olivia", "Paul", "Rosa", "Sam", "Tara", "Yusuf",
)  # fmt: skip
LAST_NAMES = (
    "Schmidt", "Martin", "de Vries", "Garcia", "Rossi", "Murphy", "Smith", "Jones",
    "Müller", "Dubois", "Jansen", "López", "Bianchi", "Kelly", "Brown", "Taylor",
)  # fmt: skip

#: ASCII slugs of LAST_NAMES for email addresses ('Müller' -> 'mueller', 'de Vries' -> 'devries')
LAST_SLUGS = tuple(
    n.lower().replace(" ", "").replace("ü", "ue").replace("ó", "o") for n in LAST_NAMES
)

#: order statuses in lifecycle order, with their share of clean orders
STATUSES = ("placed", "paid", "shipped", "delivered", "returned", "cancelled")
STATUS_WEIGHTS = (0.05, 0.10, 0.20, 0.52, 0.06, 0.07)
SHIPPED = np.array([False, False, True, True, True, False])
#: the status an update moves an order to (returned and cancelled are final)
NEXT_STATUS = np.array([1, 2, 3, 4, 4, 5])

CHANNELS = ("email", "chat", "phone", "web")
PRIORITIES = ("low", "normal", "high", "urgent")
BAD_PRIORITIES = ("asap", "whenever")
#: legacy priority codes that silver maps to names (not defects): p1=urgent .. p4=low
LEGACY_PRIORITIES = ("p4", "p3", "p2", "p1")
SUBJECTS = (
    "Where is my order?",
    "Refund request",
    "Item arrived damaged",
    "Wrong size, need an exchange",
    "Cannot log in",
    'Invoice "copy" needed for my accountant',
    "Delivery late — again",
    "Change my delivery address",
    "Discount code not accepted",
    "Cancel my order, please",
)

#: order defects: kind -> rate (share of generated orders). At most one per order.
ORDER_DEFECTS: dict[str, float] = {
    "null_customer_id": 0.001,  # -> silver orders: customer_id_not_null (quarantine)
    "null_amount": 0.001,  # -> silver orders: amount_not_null (quarantine)
    "negative_amount": 0.0005,  # -> silver orders: amount_between (quarantine)
    "huge_amount": 0.0001,  # 250000.00 -> silver orders: amount_between (quarantine)
    "unparseable_amount": 0.0001,  # 'N/A', '12,50' -> raw_orders source rejects (quarantine)
    "bad_status": 0.002,  # 'unknown' / '' -> silver status checks (quarantine)
    "orphan_customer": 0.002,  # customer not in customers -> customer_id_relationship
    "shipped_before_ordered": 0.0005,  # -> silver orders: shipped_after_ordered
    "late": 0.005,  # recorded 8-20 days after ordered_at -> late_arrival (warn, published)
    "duplicate_update": 0.005,  # a second, later version of the order (dedup keeps latest)
    "duplicate_exact": 0.002,  # the same line twice (dedup; bronze duplicate_rate warns)
    "status_case": 0.01,  # 'SHIPPED', ' Delivered ' -> normalised by silver, not a defect
}
CUSTOMER_DEFECTS: dict[str, float] = {
    "bad_email": 0.02,  # four malformed kinds -> email_regex_match (warn, published)
    "bad_country": 0.005,  # 'XX', 'Germany', '' -> country checks (quarantine)
    "duplicate_update": 0.01,  # the customer again with a new email, later updated_at
    "cosmetic": 0.05,  # upper-case / padded email, lower-case country: normalised
}
TICKET_DEFECTS: dict[str, float] = {
    "null_customer_id": 0.005,  # -> silver tickets: customer_id_not_null (quarantine)
    "orphan_customer": 0.003,  # -> silver tickets: customer_id_relationship (quarantine)
    "bad_priority": 0.005,  # 'asap', 'whenever' -> priority_accepted_values (quarantine)
    "legacy_priority": 0.02,  # 'p1'..'p4' -> mapped by silver, not a defect
    "cosmetic": 0.10,  # ' Email', 'CHAT', 'High' -> normalised by silver
}
EMAIL_DEFECT_KINDS = ("missing_at", "double_at", "no_tld", "space")

ORDER_COLUMNS = (
    "order_id", "customer_id", "status", "amount", "currency",
    "ordered_at", "updated_at", "shipped_at",
)  # fmt: skip
RAGGED_LINE = b"999999999,1,delivered,10.00,EUR,2024-01-01 00:00:00,2024-01-01 00:00:00,,oops\n"
BROKEN_JSON_LINE = b'{"ticket_id": 999999999, "customer_id": 1, "opened_at": "2024-01-0\n'


# ---------------------------------------------------------------------------------------
# helpers


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _draw_defects(rng: np.random.Generator, n: int, rates: dict[str, float]) -> np.ndarray:
    """One categorical draw per row: index into ``rates`` keys, or -1 for a clean row."""
    cum = np.cumsum(list(rates.values()))
    idx = np.searchsorted(cum, rng.random(n), side="right")
    return np.where(idx < len(rates), idx, -1)


def _mask(defect: np.ndarray, rates: dict[str, float], kind: str) -> np.ndarray:
    m: np.ndarray = defect == list(rates).index(kind)
    return m


def _ts(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(seconds.astype(np.int64), type=pa.timestamp("s"), mask=null)


def _pick(vocab: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    """Strings by index into a small vocabulary, vectorised (dictionary decode)."""
    dictionary = pa.array(list(vocab), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), dictionary).cast(
        pa.string()
    )


def _chunks(n: int, chunk_rows: int) -> Iterator[tuple[int, int, int]]:
    """(chunk index, first row, row count) covering ``n`` rows."""
    for j, lo in enumerate(range(0, n, chunk_rows)):
        yield j, lo, min(chunk_rows, n - lo)


def _write_csv(sink: BinaryIO, table: pa.Table, header: bool) -> None:
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=header))


def n_customers(orders: int) -> int:
    return max(10, orders // 20)


def n_tickets(orders: int) -> int:
    return max(10, orders // 10)


# ---------------------------------------------------------------------------------------
# customers


@dataclass(frozen=True)
class CustomerBase:
    """Per-customer numbers the order and ticket generators need (a few bytes each)."""

    count: int
    country: np.ndarray  # index into COUNTRIES
    churn_at: np.ndarray  # seconds; customers order nothing after it (int64 max: never)
    popularity: np.ndarray  # a permutation: skewed draws map onto random customers
    loyal: np.ndarray  # ids (1-based) of customers who never churn
    churners: np.ndarray  # ids (1-based) of customers who churn

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Customer ids, skewed: a few customers order a lot, most order a little."""
        ids: np.ndarray = self.popularity[(self.count * rng.random(n) ** 2).astype(np.int64)] + 1
        return ids


def customer_base(seed: int, count: int, horizon_end: int) -> CustomerBase:
    rng = _rng(seed, _CUSTOMERS, 0)
    country = rng.choice(len(COUNTRIES), size=count, p=COUNTRY_WEIGHTS)
    churns = rng.random(count) < 0.35
    churn_at = np.where(
        churns,
        rng.integers(START, horizon_end, size=count),
        np.iinfo(np.int64).max,
    )
    ids = np.arange(1, count + 1)
    return CustomerBase(
        count=count,
        country=country,
        churn_at=churn_at,
        popularity=rng.permutation(count),
        loyal=ids[~churns] if (~churns).any() else ids,
        churners=ids[churns] if churns.any() else ids,
    )


def _customers_chunk(
    seed: int, j: int, first: int, n: int, base: CustomerBase
) -> tuple[pa.Table, dict[str, int]]:
    rng = _rng(seed, _CUSTOMERS, 1, j)
    base_country = base.country[first : first + n]
    ids = np.arange(first + 1, first + n + 1)
    fi = rng.integers(0, len(FIRST_NAMES), n)
    la = rng.integers(0, len(LAST_NAMES), n)
    dom = rng.integers(0, len(DOMAINS), n)
    signup = rng.integers(START - 2 * 365 * DAY, START - DAY, n)
    updated = np.minimum(signup + rng.integers(0, 30 * DAY, n), START - 1)
    defect = _draw_defects(rng, n, CUSTOMER_DEFECTS)

    first_s, last_s = _pick(FIRST_NAMES, fi), _pick(LAST_NAMES, la)
    local = pc.binary_join_element_wise(
        pc.utf8_lower(first_s),
        _pick(LAST_SLUGS, la),
        pa.array(ids.astype(str)),
        ".",
    )
    at_domain = _pick(DOMAINS, dom)
    email = pc.binary_join_element_wise(local, at_domain, "@")

    # malformed emails, four kinds
    bad = _mask(defect, CUSTOMER_DEFECTS, "bad_email")
    kind = rng.integers(0, len(EMAIL_DEFECT_KINDS), n)
    variants = {
        "missing_at": pc.binary_join_element_wise(local, at_domain, "."),
        "double_at": pc.binary_join_element_wise(local, at_domain, "@@"),
        "no_tld": pc.binary_join_element_wise(local, pc.utf8_slice_codeunits(at_domain, 0, 4), "@"),
        "space": pc.binary_join_element_wise(
            pc.replace_substring(local, ".", " ", max_replacements=1), at_domain, "@"
        ),
    }
    for k, name in enumerate(EMAIL_DEFECT_KINDS):
        email = pc.if_else(pa.array(bad & (kind == k)), variants[name], email)

    country = _pick(COUNTRIES, base_country)
    bad_country = _mask(defect, CUSTOMER_DEFECTS, "bad_country")
    country = pc.if_else(
        pa.array(bad_country), _pick(BAD_COUNTRIES, rng.integers(0, len(BAD_COUNTRIES), n)), country
    )
    cosmetic = pa.array(_mask(defect, CUSTOMER_DEFECTS, "cosmetic"))
    email = pc.if_else(
        cosmetic, pc.binary_join_element_wise("  ", pc.utf8_upper(email), " ", ""), email
    )
    country = pc.if_else(cosmetic, pc.utf8_lower(country), country)

    table = pa.table(
        {
            "customer_id": pa.array(ids),
            "email": email,
            "name": pc.binary_join_element_wise(first_s, last_s, " "),
            "country": country,
            "signup_at": _ts(signup),
            "updated_at": _ts(updated),
        }
    )
    # a later version of some customers: a new email address at another domain
    dup = np.flatnonzero(_mask(defect, CUSTOMER_DEFECTS, "duplicate_update"))
    if dup.size:
        again = table.take(pa.array(dup))
        new_email = pc.binary_join_element_wise(
            pc.take(local, pa.array(dup)), _pick(DOMAINS, (dom[dup] + 1) % len(DOMAINS)), "@"
        )
        again = again.set_column(1, "email", new_email).set_column(
            5, "updated_at", _ts(updated[dup] + rng.integers(DAY, 30 * DAY, dup.size))
        )
        table = pa.concat_tables([table, again])
    counts = {k: int((defect == i).sum()) for i, k in enumerate(CUSTOMER_DEFECTS)}
    counts.update(
        {
            f"bad_email_{name}": int((bad & (kind == k)).sum())
            for k, name in enumerate(EMAIL_DEFECT_KINDS)
        }
    )
    return table, counts


def write_customers(path: Path, seed: int, base: CustomerBase, chunk_rows: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    rows = 0
    count = base.count
    with path.open("wb") as sink:
        for j, lo, n in _chunks(count, chunk_rows):
            table, counts = _customers_chunk(seed, j, lo, n, base)
            _write_csv(sink, table, header=j == 0)
            rows += table.num_rows
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v
    return {"customers": count, "rows": rows, **totals}


# ---------------------------------------------------------------------------------------
# orders


@dataclass(frozen=True)
class Batch:
    """One orders file: the orders first placed in a 30-day window."""

    k: int
    orders: int
    first_order_id: int
    chunk_rows: int

    @property
    def window(self) -> tuple[int, int]:
        start = START + (self.k - 1) * BATCH_DAYS * DAY
        return start, start + BATCH_DAYS * DAY

    @property
    def file_name(self) -> str:
        return f"orders_{self.k:03d}.csv"


def _orders_chunk(
    seed: int, batch: Batch, j: int, first: int, n: int, customers: CustomerBase
) -> tuple[pa.Table, dict[str, int]]:
    """Chunk ``j`` of a batch: orders placed in the j-th slice of the batch window, in time
    order, followed by the duplicate rows (exact copies and later versions)."""
    rng = _rng(seed, _ORDERS, batch.k, j)
    ws, we = batch.window
    slice_len = (we - ws) * n / max(batch.orders, 1)
    lo = ws + int((we - ws) * first / max(batch.orders, 1))
    ordered = np.sort(lo + rng.integers(0, max(int(slice_len), 1), n))
    ids = batch.first_order_id + first + np.arange(n)

    cust = customers.draw(rng, n)
    churned = ordered > customers.churn_at[cust - 1]  # churned customers order no more
    cust[churned] = customers.loyal[rng.integers(0, customers.loyal.size, int(churned.sum()))]
    status = rng.choice(len(STATUSES), size=n, p=STATUS_WEIGHTS)
    amount = np.clip(np.round(rng.lognormal(3.7, 0.8, n), 2), 1.0, 5000.0)
    currency = np.array(CURRENCY_OF_COUNTRY)[customers.country[cust - 1]]
    shipped = ordered + rng.integers(2 * HOUR, 48 * HOUR, n)
    has_ship = SHIPPED[status]
    updated = np.where(has_ship, shipped, ordered) + rng.integers(60, 2 * HOUR, n)
    # The export of a batch holds changes up to the end of its window: an order placed just
    # before that has not shipped yet (it ships, as an update, in a later batch).
    not_yet = has_ship & (updated >= we)
    status = np.where(not_yet, 1, status)
    has_ship = has_ship & ~not_yet
    updated = np.minimum(np.where(not_yet, ordered + rng.integers(60, HOUR, n), updated), we - 1)

    defect = _draw_defects(rng, n, ORDER_DEFECTS)

    def m(kind: str) -> np.ndarray:
        return _mask(defect, ORDER_DEFECTS, kind)

    cust_null = m("null_customer_id")
    orphan = m("orphan_customer")
    cust = np.where(orphan, customers.count + 1 + rng.integers(0, customers.count, n), cust)
    amount = np.where(m("negative_amount"), -amount, amount)
    amount = np.where(m("huge_amount"), 250_000.0, amount)
    amount_s = pc.cast(pa.array(amount), pa.string())
    unparseable = m("unparseable_amount")
    amount_s = pc.if_else(
        pa.array(unparseable), _pick(("N/A", "12,50"), rng.integers(0, 2, n)), amount_s
    )
    amount_null = m("null_amount")
    bad_ship = m("shipped_before_ordered")
    has_ship = has_ship | bad_ship
    status = np.where(bad_ship & ~SHIPPED[status], 3, status)
    shipped = np.where(bad_ship, ordered - rng.integers(HOUR, 5 * DAY, n), shipped)
    late = m("late")
    ordered = np.where(late, ordered - rng.integers(8 * DAY, 20 * DAY, n), ordered)

    # status strings: clean, cosmetic variants ('SHIPPED', ' Delivered '), invalid values
    vocab = [*STATUSES, *(s.upper() for s in STATUSES), *(f" {s.title()} " for s in STATUSES)]
    vocab += ["unknown", ""]
    variant = rng.integers(1, 3, n) * len(STATUSES)  # 6 = upper-case, 12 = padded title
    codes = np.where(m("status_case"), status + variant, status)
    codes = np.where(m("bad_status"), 18 + rng.integers(0, 2, n), codes)

    table = pa.table(
        {
            "order_id": pa.array(ids),
            "customer_id": pa.array(cust, mask=cust_null),
            "status": _pick(vocab, codes),
            "amount": pc.if_else(pa.array(amount_null), pa.nulls(n, pa.string()), amount_s),
            "currency": pa.array(currency),
            "ordered_at": _ts(ordered),
            "updated_at": _ts(updated),
            "shipped_at": _ts(shipped, ~has_ship),
        }
    )

    # later versions: the order moved on in its lifecycle (dedup in silver keeps the latest)
    upd = np.flatnonzero(m("duplicate_update"))
    new_status = NEXT_STATUS[status[upd]]
    newly_shipped = SHIPPED[new_status] & ~has_ship[upd]
    new_ship = np.where(
        newly_shipped, ordered[upd] + rng.integers(2 * HOUR, 48 * HOUR, upd.size), shipped[upd]
    )
    new_updated = np.maximum(updated[upd], np.where(SHIPPED[new_status], new_ship, 0))
    new_updated = new_updated + rng.integers(HOUR, 3 * DAY, upd.size)
    # a change after the end of the window belongs to a later export: no second version here
    in_window = new_updated < we
    defect[upd[~in_window]] = -1
    upd, new_status, new_ship, new_updated = (
        upd[in_window],
        new_status[in_window],
        new_ship[in_window],
        new_updated[in_window],
    )
    updates = table.take(pa.array(upd))
    updates = (
        updates.set_column(2, "status", _pick(STATUSES, new_status))
        .set_column(6, "updated_at", _ts(new_updated))
        .set_column(7, "shipped_at", _ts(new_ship, ~(has_ship[upd] | SHIPPED[new_status])))
    )
    exact = table.take(pa.array(np.flatnonzero(m("duplicate_exact"))))
    counts = {k: int((defect == i).sum()) for i, k in enumerate(ORDER_DEFECTS)}
    return pa.concat_tables([table, updates, exact]), counts


def _status_updates(
    seed: int, previous: Batch, batch: Batch, customers: CustomerBase, wanted: int
) -> pa.Table:
    """Later versions of recent orders of the previous batch (placed/paid/shipped/delivered
    orders moving on), recorded early in this batch's window."""
    chunks = list(_chunks(previous.orders, previous.chunk_rows))
    if not chunks or wanted <= 0:
        return pa.table({c: [] for c in ORDER_COLUMNS})
    j, lo, n = chunks[-1]
    table, _ = _orders_chunk(seed, previous, j, lo, n, customers)
    table = table.slice(0, n)  # the orders themselves, not their duplicates
    _, prev_end = previous.window
    status = table["status"]
    eligible = pc.and_(
        pc.is_in(status, pa.array(["placed", "paid", "shipped", "delivered"])),
        pc.and_(
            pc.greater_equal(
                pc.cast(table["ordered_at"], pa.int64()), pa.scalar(prev_end - 3 * DAY)
            ),
            pc.and_(pc.is_valid(table["customer_id"]), pc.is_valid(table["amount"])),
        ),
    )
    candidates = table.filter(eligible)
    rng = _rng(seed, _UPDATES, batch.k)
    take = np.sort(rng.permutation(candidates.num_rows)[: min(wanted, candidates.num_rows)])
    chosen = candidates.take(pa.array(take, type=pa.int64()))
    old = np.array([STATUSES.index(s) for s in chosen["status"].to_pylist()], dtype=np.int64)
    new_status = NEXT_STATUS[old]
    ordered = pc.cast(chosen["ordered_at"], pa.int64()).to_numpy()
    old_ship = chosen["shipped_at"]
    had_ship = pc.is_valid(old_ship).to_numpy(zero_copy_only=False)
    ship = np.where(
        had_ship,
        pc.cast(pc.fill_null(old_ship, pa.scalar(0, pa.timestamp("s"))), pa.int64()).to_numpy(),
        ordered + rng.integers(2 * HOUR, 48 * HOUR, take.size),
    )
    ws, _ = batch.window
    updated = np.maximum(ws, np.where(SHIPPED[new_status], ship, ws)) + rng.integers(
        60, DAY, take.size
    )
    return (
        chosen.set_column(2, "status", _pick(STATUSES, new_status))
        .set_column(6, "updated_at", _ts(updated))
        .set_column(7, "shipped_at", _ts(ship, ~(had_ship | SHIPPED[new_status])))
    )


def write_orders_batch(
    path: Path,
    seed: int,
    batch: Batch,
    customers: CustomerBase,
    *,
    ragged: bool,
    updates_of: Batch | None = None,
    updates: int = 0,
) -> dict[str, Any]:
    totals: dict[str, int] = dict.fromkeys(ORDER_DEFECTS, 0)
    rows = 0
    written_updates = 0
    with path.open("wb") as sink:
        header = True
        if updates_of is not None:
            upd = _status_updates(seed, updates_of, batch, customers, updates)
            _write_csv(sink, upd, header=True)
            header = False
            rows += upd.num_rows
            written_updates = upd.num_rows
        for j, lo, n in _chunks(batch.orders, batch.chunk_rows):
            table, counts = _orders_chunk(seed, batch, j, lo, n, customers)
            _write_csv(sink, table, header=header)
            header = False
            rows += table.num_rows
            for k, v in counts.items():
                totals[k] += v
            if ragged and j == 0:
                # one line with a column too many, as a broken export would write it
                sink.write(RAGGED_LINE)
    return {
        "batch": batch.k,
        "file": f"orders/{batch.file_name}",
        "orders": batch.orders,
        "first_order_id": batch.first_order_id,
        "last_order_id": batch.first_order_id + batch.orders - 1,
        "chunk_rows": batch.chunk_rows,
        "window_start": str(np.datetime64(batch.window[0], "s")),
        "window_end": str(np.datetime64(batch.window[1], "s")),
        "data_rows": rows,  # CSV lines after the header, without the ragged line
        "ragged_lines": 1 if ragged else 0,
        "updates_of_previous_batch": written_updates,
        "defects": totals,
    }


# ---------------------------------------------------------------------------------------
# tickets


def _json_str(arr: pa.Array) -> pa.Array:
    """JSON string literals; the vocabularies hold no backslashes, only plain quotes."""
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '\\"'), '"', "")
    return pc.fill_null(quoted, "null")


def _tickets_chunk(
    seed: int, j: int, first: int, n: int, customers: CustomerBase, end: int
) -> tuple[pa.Array, dict[str, int]]:
    rng = _rng(seed, _TICKETS, j)
    ids = np.arange(first + 1, first + n + 1)
    # unhappy customers write more: half of all tickets come from customers who churn
    from_churner = rng.random(n) < 0.5
    cust = np.where(
        from_churner,
        customers.churners[rng.integers(0, customers.churners.size, n)],
        customers.draw(rng, n),
    )
    opened = np.sort(rng.integers(START - 60 * DAY, end, n))
    channel = rng.choice(len(CHANNELS), size=n, p=(0.45, 0.30, 0.15, 0.10))
    priority = rng.choice(len(PRIORITIES), size=n, p=(0.30, 0.45, 0.18, 0.07))
    subject = rng.integers(0, len(SUBJECTS), n)
    defect = _draw_defects(rng, n, TICKET_DEFECTS)

    def m(kind: str) -> np.ndarray:
        return _mask(defect, TICKET_DEFECTS, kind)

    cust = np.where(m("orphan_customer"), customers.count + 1 + rng.integers(0, 1000, n), cust)
    chan_vocab = [*CHANNELS, *(f" {c.title()}" for c in CHANNELS), *(c.upper() for c in CHANNELS)]
    chan_codes = np.where(m("cosmetic"), channel + len(CHANNELS) * rng.integers(1, 3, n), channel)
    prio_vocab = [
        *PRIORITIES,
        *(p.title() for p in PRIORITIES),
        *LEGACY_PRIORITIES,
        *BAD_PRIORITIES,
    ]
    prio_codes = np.where(m("cosmetic"), priority + 4, priority)
    prio_codes = np.where(m("legacy_priority"), priority + 8, prio_codes)
    prio_codes = np.where(m("bad_priority"), 12 + rng.integers(0, 2, n), prio_codes)

    opened_s = pc.strftime(_ts(opened), format="%Y-%m-%d %H:%M:%S")
    cust_s = pc.fill_null(pc.cast(pa.array(cust, mask=m("null_customer_id")), pa.string()), "null")
    lines = pc.binary_join_element_wise(
        '{"ticket_id": ',
        pc.cast(pa.array(ids), pa.string()),
        ', "customer_id": ',
        cust_s,
        ', "opened_at": ',
        _json_str(opened_s),
        ', "channel": ',
        _json_str(_pick(chan_vocab, chan_codes)),
        ', "priority": ',
        _json_str(_pick(prio_vocab, prio_codes)),
        ', "subject": ',
        _json_str(_pick(SUBJECTS, subject)),
        "}\n",
        "",
    )
    return lines, {k: int((defect == i).sum()) for i, k in enumerate(TICKET_DEFECTS)}


def write_tickets(
    path: Path, seed: int, count: int, chunk_rows: int, customers: CustomerBase, end: int
) -> dict[str, int]:
    totals: dict[str, int] = dict.fromkeys(TICKET_DEFECTS, 0)
    with path.open("wb") as sink:
        for j, lo, n in _chunks(count, chunk_rows):
            lines, counts = _tickets_chunk(seed, j, lo, n, customers, end)
            sink.write(_concat_bytes(lines))
            if j == 0:
                sink.write(BROKEN_JSON_LINE)  # a truncated record, as from a crashed writer
            for k, v in counts.items():
                totals[k] += v
    return {"tickets": count, "broken_lines": 1, **totals}


def _concat_bytes(arr: pa.Array) -> bytes:
    """The concatenated UTF-8 bytes of a string array without per-row Python objects."""
    arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    data = arr.buffers()[2]
    return bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])]) if data else b""


# ---------------------------------------------------------------------------------------
# labels (the feature store's entity rows)

#: a label says whether the customer stops ordering within this horizon after its time
LABEL_DAYS = 30
LABELS_PER_CUSTOMER = 2


def write_labels(path: Path, seed: int, customers: CustomerBase, horizon_end: int) -> int:
    """``LABELS_PER_CUSTOMER`` rows per customer at random instants of the data's window (up to
    ``LABEL_DAYS`` before its end, so every label's future is in the data), shuffled:
    ``churned_within_30d`` is the generator's truth (the customer's last order time falls
    before ``event_timestamp + 30 days``), never derived from features."""
    rng = _rng(seed, _LABELS, 0)
    n = customers.count * LABELS_PER_CUSTOMER
    ids = np.repeat(np.arange(1, customers.count + 1), LABELS_PER_CUSTOMER)
    at = rng.integers(START, horizon_end - LABEL_DAYS * DAY, n)
    churned = customers.churn_at[ids - 1] <= at + LABEL_DAYS * DAY
    order = rng.permutation(n)
    table = pa.table(
        {
            "customer_id": pa.array(ids[order]),
            "event_timestamp": _ts(at[order]),
            "churned_within_30d": pa.array(churned[order]),
        }
    )
    pacsv.write_csv(table, path)  # 2 rows per customer: small next to the orders
    return n


# ---------------------------------------------------------------------------------------
# entry points


def _manifest_path(out: Path) -> Path:
    return out / "_manifest.json"


def generate(
    out: Path,
    orders: int,
    *,
    seed: int = 42,
    batches: int = DEFAULT_BATCHES,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> dict[str, Any]:
    """Initial load: customers, tickets and ``batches`` orders files. Returns the manifest."""
    if orders < batches:
        raise ValueError(f"--orders must be at least the number of batches ({batches})")
    out.mkdir(parents=True, exist_ok=True)
    (out / "orders").mkdir(exist_ok=True)
    for stale in (out / "orders").glob("orders_*.csv"):
        stale.unlink()
    horizon = START + batches * BATCH_DAYS * DAY
    count = n_customers(orders)
    customers = customer_base(seed, count, horizon)
    manifest: dict[str, Any] = {
        "seed": seed,
        "orders": orders,
        "chunk_rows": chunk_rows,
        "initial_batches": batches,
        "customers": write_customers(out / "customers.csv", seed, customers, chunk_rows),
        "tickets": write_tickets(
            out / "tickets.ndjson", seed, n_tickets(orders), chunk_rows, customers, horizon
        ),
        "batches": [],
    }
    manifest["labels"] = write_labels(out / "labels.csv", seed, customers, horizon)
    next_id = 1
    per_batch = orders // batches
    for k in range(1, batches + 1):
        n = per_batch + (orders - per_batch * batches if k == batches else 0)
        batch = Batch(k=k, orders=n, first_order_id=next_id, chunk_rows=chunk_rows)
        manifest["batches"].append(
            write_orders_batch(
                out / "orders" / batch.file_name, seed, batch, customers, ragged=k == 1
            )
        )
        next_id += n
    _manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def increment(out: Path, k: int, orders: int | None = None) -> dict[str, Any]:
    """Batch ``k`` (after the initial ones): new orders in a later window plus status updates
    of the newest orders of batch ``k - 1``. Returns the batch's manifest entry."""
    path = _manifest_path(out)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the initial generation first")
    manifest = json.loads(path.read_text())
    done = {b["batch"]: b for b in manifest["batches"]}
    if k <= manifest["initial_batches"] or (k - 1) not in done:
        raise ValueError(
            f"--batch {k}: batches 1..{max(done)} exist; the next increment is {max(done) + 1}"
        )
    seed, chunk_rows = manifest["seed"], manifest["chunk_rows"]
    prev_entry = done[k - 1]
    previous = Batch(
        k=k - 1,
        orders=prev_entry["orders"],
        first_order_id=prev_entry["first_order_id"],
        chunk_rows=prev_entry["chunk_rows"],
    )
    n = orders if orders is not None else manifest["orders"] // manifest["initial_batches"]
    batch = Batch(
        k=k, orders=n, first_order_id=prev_entry["last_order_id"] + 1, chunk_rows=chunk_rows
    )
    horizon = START + manifest["initial_batches"] * BATCH_DAYS * DAY
    customers = customer_base(seed, manifest["customers"]["customers"], horizon)
    entry = write_orders_batch(
        out / "orders" / batch.file_name,
        seed,
        batch,
        customers,
        ragged=False,
        updates_of=previous,
        updates=max(1, n // 50),
    )
    # later batches built on the old k are now stale
    for later in [b for b in done if b > k]:
        (out / "orders" / f"orders_{later:03d}.csv").unlink(missing_ok=True)
    manifest["batches"] = [b for b in manifest["batches"] if b["batch"] < k] + [entry]
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return entry


def _summary(manifest: dict[str, Any], seconds: float) -> str:
    lines = [f"wrote in {seconds:.1f}s (peak RSS {_peak_rss_mb():.0f} MB):"]
    c = manifest["customers"]
    lines.append(
        f"  customers.csv   {c['customers']:>10,} customers ({c['rows']:,} rows); "
        f"bad emails {c['bad_email']}, bad countries {c['bad_country']}, "
        f"updated duplicates {c['duplicate_update']}"
    )
    t = manifest["tickets"]
    lines.append(
        f"  tickets.ndjson  {t['tickets']:>10,} tickets; null customer {t['null_customer_id']}, "
        f"orphans {t['orphan_customer']}, bad priority {t['bad_priority']}, broken JSON lines 1"
    )
    for b in manifest["batches"]:
        lines.append(_batch_line(b))
    return "\n".join(lines)


def _batch_line(b: dict[str, Any]) -> str:
    d = b["defects"]
    shown = ", ".join(f"{k} {v}" for k, v in d.items() if k != "status_case")
    extra = f", ragged lines {b['ragged_lines']}" if b["ragged_lines"] else ""
    upd = b["updates_of_previous_batch"]
    extra += f", updates of batch {b['batch'] - 1}: {upd}" if upd else ""
    return f"  {b['file']:<22} {b['orders']:>10,} orders ({b['data_rows']:,} rows); {shown}{extra}"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--orders",
        type=int,
        default=None,
        help="orders to generate (initial load: default 20000; --batch: default as many as "
        "one initial batch)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--out", type=Path, default=PROJECT_DIR / "data", help="default: data/ of the project"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="write increment batch K (orders_K.csv) instead of the initial load",
    )
    parser.add_argument("--batches", type=int, default=DEFAULT_BATCHES, help="initial batches")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        if args.batch is None:
            manifest = generate(
                args.out,
                args.orders or 20_000,
                seed=args.seed,
                batches=args.batches,
                chunk_rows=args.chunk_rows,
            )
            print(_summary(manifest, time.perf_counter() - began))
        else:
            entry = increment(args.out, args.batch, args.orders)
            print(
                f"wrote in {time.perf_counter() - began:.1f}s "
                f"(peak RSS {_peak_rss_mb():.0f} MB):\n{_batch_line(entry)}"
            )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
