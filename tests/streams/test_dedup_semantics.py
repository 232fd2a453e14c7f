"""Which event of a key wins, independent of batch boundaries and restarts: the first
*published* one (broker order). An event that went to the DLQ claims nothing, so a later
valid event with its key is published (before: it was dropped as a duplicate of the
invalid one — until a restart rebuilt the window from the sink, which then let it in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.engine import engine_for
from lockgate.storage import store_for
from lockgate.streams.config import StreamSpec
from lockgate.streams.runner import StreamRunner
from tests.streams.conftest import COLUMNS, event
from tests.streams.test_restart import ListConsumer

MESSAGES = [
    event(1, amount=-1.0),  # invalid: to the DLQ
    event(1, amount=2.0),  # the first valid e1: published
    event(1, amount=3.0),  # a duplicate
    event(2, amount=5.0),
    event(2, amount=6.0),  # a duplicate, same batch or not
]


def _spec(**over: object) -> StreamSpec:
    d: dict[str, object] = {
        "name": "events",
        "source": {"type": "redis", "stream": "unused"},
        "columns": COLUMNS,
        "dedup": {"key": ["event_id"]},
        "mask": {"email": "hash"},
        "checks": [{"type": "between", "column": "amount", "min": 0}],
        "sink": {"dataset": "events"},
    }
    d.update(over)
    return StreamSpec.model_validate(d)


def _published(path: Path) -> list[tuple[str, float]]:
    t = store_for("delta", path).read("events")
    return sorted(
        zip(t.column("event_id").to_pylist(), t.column("amount").to_pylist(), strict=True)
    )


@pytest.mark.parametrize("sizes", [[5], [1, 4], [2, 3], [1, 1, 1, 1, 1]])
@pytest.mark.parametrize("restart_after", [None, 1])
def test_the_first_valid_event_of_a_key_wins(
    tmp_path: Path, sizes: list[int], restart_after: int | None
) -> None:
    store = store_for("delta", tmp_path)
    with engine_for() as con:
        if restart_after is None:
            c = (
                StreamRunner(_spec(), ListConsumer(MESSAGES, sizes), store, con)
                .run(until_idle=True)
                .counts
            )
        else:  # the first batch(es) by one consumer, the rest by a new one (window rebuilt)
            first = ListConsumer(MESSAGES, sizes[:restart_after])
            c = StreamRunner(_spec(), first, store, con).run(until_idle=True).counts
            rest = ListConsumer(MESSAGES, sizes[restart_after:])
            c.add(StreamRunner(_spec(), rest, store, con).run(until_idle=True).counts)
    assert _published(tmp_path) == [("e1", 2.0), ("e2", 5.0)]
    assert c.reconciles and (c.read, c.published, c.dlq, c.duplicates) == (5, 2, 1, 2)
    assert store.read("events__dlq").column("seq").to_pylist() == [1]


@pytest.mark.parametrize("restart", [False, True])
def test_dedup_on_a_masked_key_holds_across_a_restart(tmp_path: Path, restart: bool) -> None:
    """The key is masked (hash) in the table and compared on its masked values: the window
    rebuilt from the sink at start matches. Before: the window held raw values while
    running but masked ones after a restart — a duplicate got through."""
    msgs = [event(1, email="a@x"), event(2, email="a@x"), event(3, email="b@x")]
    msgs += [event(4, email="a@x"), event(5, email="b@x")]
    store = store_for("delta", tmp_path)
    spec = _spec(dedup={"key": ["email"]})
    with engine_for() as con:
        if restart:
            c = (
                StreamRunner(spec, ListConsumer(msgs, [2, 1]), store, con)
                .run(until_idle=True)
                .counts
            )
            rest = ListConsumer(msgs, [2])
            c.add(StreamRunner(spec, rest, store, con).run(until_idle=True).counts)
        else:
            c = (
                StreamRunner(spec, ListConsumer(msgs, [2, 1, 2]), store, con)
                .run(until_idle=True)
                .counts
            )
    assert c.reconciles and (c.read, c.published, c.duplicates) == (5, 2, 3)
    assert sorted(store.read("events").column("event_id").to_pylist()) == ["e1", "e3"]


def test_a_dedup_key_masked_many_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="dedup key column 'email' is masked with 'redact'"):
        _spec(dedup={"key": ["email"]}, mask={"email": "redact"})
