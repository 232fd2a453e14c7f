"""Online stores (SQLite and a real Redis) and incremental materialisation: after any
sequence of Delta commits and materialisation times, the incremental store holds exactly
what a full refresh at the same time holds (oracle), and both agree with the offline
training set at that time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockgate.features import training_set
from lockgate.features.materialize import materialize
from lockgate.features.online import OnlineStore, SQLiteOnlineStore, get_online_features, open_store
from lockgate.features.online_redis import RedisOnlineStore
from lockgate.project import load_project
from tests.features.conftest import Row, delete_events, events_project, write_events

D = datetime(2024, 1, 1)
KEYS = list(range(6))


def _day(n: float) -> datetime:
    return D + timedelta(days=n)


def _stores(tmp_path: Path, kind: str, prefix: str, tag: str) -> OnlineStore:
    if kind == "sqlite":
        return SQLiteOnlineStore(tmp_path / f"{tag}.db", batch_size=2)
    return RedisOnlineStore("redis://127.0.0.1:6379/0", f"{prefix}{tag}:", batch_size=2)


@pytest.fixture(params=["sqlite", "redis"])
def kind(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "redis":
        request.getfixturevalue("redis_prefix")
    yield request.param


def _prefix(request: pytest.FixtureRequest, kind: str) -> str:
    return str(request.getfixturevalue("redis_prefix")) if kind == "redis" else ""


def _content(store: OnlineStore, keys: list[object]) -> list[object]:
    return [
        None if v is None else (v.event_ts, dict(v.values))
        for v in store.read("ev", [(k,) for k in keys])
    ]


def test_incremental_equals_full_refresh_step_by_step(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    prefix = _prefix(request, kind)
    root = events_project(tmp_path / "p")
    write_events(root, [(1, _day(1), _day(1), 10.0), (2, _day(1), _day(1), 20.0)])
    project = load_project(root)
    inc = _stores(tmp_path, kind, prefix, "inc")

    def step(now: datetime) -> str:
        done = materialize(project, store=inc, now=now)["ev"]
        full = _stores(tmp_path, kind, prefix, f"full{now.day}")
        materialize(project, store=full, now=now, full_refresh=True)
        assert _content(inc, KEYS) == _content(full, KEYS), done
        return done.mode

    assert step(_day(5)) == "full"
    assert step(_day(5)) == "unchanged"
    # an append touching key 1 (newer) and a new key 3: only those two are recomputed
    write_events(root, [(1, _day(3), _day(3), 11.0), (3, _day(2), _day(2), 30.0)])
    r = materialize(project, store=inc, now=_day(5))["ev"]
    assert (r.mode, r.written, r.deleted, r.from_version, r.to_version) == (
        "incremental",
        2,
        0,
        0,
        1,
    )
    # a late correction: event on day 2, written on day 8 — unknown at day 5 and 7, known at 9
    write_events(root, [(2, _day(2), _day(8), 21.0)])
    assert step(_day(7)) == "incremental"  # key 2 recomputed, still the day-1 value
    assert _content(inc, [2])[0][1] == {"spend": 20.0}  # type: ignore[index]
    assert step(_day(9)) == "incremental"  # no new version: known since day 8
    assert _content(inc, [2])[0][1] == {"spend": 21.0}  # type: ignore[index]
    # a delete: key 3 has no row left, so it leaves the online store
    delete_events(root, "customer_id = 3")
    r = materialize(project, store=inc, now=_day(9))["ev"]
    assert r.deleted >= 1 and _content(inc, [3]) == [None]
    # an overwrite replacing everything
    write_events(root, [(5, _day(4), _day(4), 50.0)], mode="overwrite")
    assert step(_day(10)) == "incremental"
    assert _content(inc, KEYS) == [None] * 5 + [(datetime(2024, 1, 5, tzinfo=UTC), {"spend": 50.0})]


def test_a_definition_change_or_an_earlier_time_is_a_full_refresh(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    write_events(root, [(1, _day(1), _day(1), 10.0)])
    store = SQLiteOnlineStore(tmp_path / "o.db")
    assert materialize(load_project(root), store=store, now=_day(5))["ev"].mode == "full"
    assert materialize(load_project(root), store=store, now=_day(4))["ev"].mode == "full"
    events_project(root, ttl="3d")
    r = materialize(load_project(root), store=store, now=_day(5))["ev"]
    assert (r.mode, r.reason) == ("full", "the view's definition changed")


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.lists(
                st.tuples(
                    st.one_of(st.none(), st.sampled_from(KEYS)),
                    st.integers(0, 12),  # event day
                    st.integers(0, 6),  # created this many days after the event
                    st.sampled_from([1.0, 2.0, -0.0, None]),
                ),
                max_size=5,
            ),
        ),
        st.tuples(st.just("delete"), st.sampled_from(KEYS)),
        st.tuples(st.just("materialize"), st.integers(0, 3)),  # now advances by 0-3 days
    ),
    min_size=1,
    max_size=10,
)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=ops)
def test_incremental_matches_full_refresh_and_offline(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[object, ...]]
) -> None:
    tmp = tmp_path_factory.mktemp("h")
    root = events_project(tmp / "p", ttl="4d")
    write_events(root, [])  # an empty feature table is a valid start
    project = load_project(root)
    inc = SQLiteOnlineStore(tmp / "inc.db")
    now = _day(3)
    for n, op in enumerate([*ops, ("materialize", 1)]):
        if op[0] == "append":
            rows: list[Row] = [
                (k, _day(ev), _day(ev + cr), v)
                for k, ev, cr, v in op[1]  # type: ignore[union-attr]
            ]
            write_events(root, rows)
        elif op[0] == "delete":
            delete_events(root, f"customer_id = {op[1]}")
        else:
            now += timedelta(days=op[1])  # type: ignore[operator]
            materialize(project, store=inc, now=now)
            full = SQLiteOnlineStore(tmp / f"full{n}.db")
            materialize(project, store=full, now=now, full_refresh=True)
            assert _content(inc, [*KEYS, None]) == _content(full, [*KEYS, None])
    # online at "now" (TTL at read time) == the offline training set at "now"
    online = get_online_features(
        project, "ev", {"customer_id": [*KEYS, None, 99]}, store=inc, now=now
    )
    labels = pa.table(
        {"customer_id": [*KEYS, None, 99], "event_timestamp": [now.replace(tzinfo=None)] * 8}
    )
    offline = training_set(project, "ev", labels)
    assert online["results"][1]["values"] == offline.column("spend").to_pylist()  # type: ignore[index]


def test_redis_ttl_matches_the_exclusive_bound(tmp_path: Path, redis_prefix: str) -> None:
    root = events_project(tmp_path / "p", ttl="2d")
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    write_events(
        root,
        [
            (1, now - timedelta(days=1), now - timedelta(days=1), 1.0),  # valid for one more day
            (2, now - timedelta(days=3), now - timedelta(days=3), 2.0),  # already expired
        ],
    )
    project = load_project(root)
    store = RedisOnlineStore("redis://127.0.0.1:6379/0", redis_prefix)
    r = materialize(project, store=store)["ev"]
    assert r.written == 2
    assert store.read("ev", [(2,)]) == [None]  # never stored: the read path refuses it anyway
    pexpire = store.client.pexpiretime(store._key("ev", (1,)))
    expected = int((now + timedelta(days=1)).replace(tzinfo=UTC).timestamp() * 1000)
    assert pexpire == expected  # event_ts + ttl, exactly
    out = get_online_features(project, "ev", {"customer_id": [1, 2]}, store=store)
    assert out["results"][1]["values"] == [1.0, None]  # type: ignore[index]


def test_redis_is_selected_in_config_and_masks_its_password(
    tmp_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_yaml = (
        "online_store: {type: redis, url: 'redis://127.0.0.1:6379/0', "
        f"key_prefix: '{redis_prefix}', batch_size: 1}}\n"
    )
    root = events_project(tmp_path / "p", online_store=store_yaml)
    write_events(root, [(k, _day(1), _day(1), float(k)) for k in KEYS])
    project = load_project(root)
    store = open_store(project)
    assert isinstance(store, RedisOnlineStore) and store.prefix == redis_prefix
    assert materialize(project, now=_day(2))["ev"].written == len(KEYS)
    assert len(store.keys("ev")) == len(KEYS)
    # a full refresh removes the keys it no longer writes (SCAN), and nothing of others
    write_events(root, [(0, _day(1), _day(1), 0.0)], mode="overwrite")
    r = materialize(project, now=_day(2), full_refresh=True)["ev"]
    assert (r.written, r.deleted) == (1, len(KEYS) - 1)
    assert store.keys("ev") == [f"{redis_prefix}ev:[0]".encode()]
    # a password in the URL (from the environment) never shows in an error
    monkeypatch.setenv("LG_TEST_REDIS_PW", "s3cret-pw")
    bad = events_project(
        tmp_path / "q",
        online_store="online_store: {type: redis, url: 'redis://:${LG_TEST_REDIS_PW}@127.0.0.1:1/0'}\n",
    )
    write_events(bad, [(1, _day(1), _day(1), 1.0)])
    from lockgate.errors import TransientError

    with pytest.raises(TransientError) as e:
        materialize(load_project(bad), now=_day(2))
    assert "s3cret-pw" not in str(e.value) + str(e.value.hint)


def test_attack_keys_and_requests(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """NULL keys never materialise; a NULL / unknown / duplicate key in a request keeps its
    position; ragged entity lists are a usage error, not a crash."""
    prefix = _prefix(request, kind)
    root = events_project(tmp_path / "p")
    write_events(
        root,
        [(None, _day(1), _day(1), 9.0), (1, _day(1), _day(1), 1.0), (1, _day(1), _day(1), 1.0)],
    )
    project = load_project(root)
    store = _stores(tmp_path, kind, prefix, "s")
    assert materialize(project, store=store, now=_day(2))["ev"].written == 1
    out = get_online_features(
        project, "ev", {"customer_id": [1, None, 77, 1]}, store=store, now=_day(2)
    )
    spend = out["results"][1]  # type: ignore[index]
    assert spend["values"] == [1.0, None, None, 1.0]
    assert spend["statuses"] == ["PRESENT", "NOT_FOUND", "NOT_FOUND", "PRESENT"]
    from lockgate.errors import UsageError

    with pytest.raises(UsageError, match="all of one length"):
        get_online_features(project, "ev", {"customer_id": 1}, store=store)  # type: ignore[dict-item]


def test_serving_skew_finds_a_stale_online_store_and_psi_drift(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    from lockgate.features.skew import psi, serving_skew

    prefix = _prefix(request, kind)
    root = events_project(tmp_path / "p")
    write_events(root, [(k, _day(1), _day(1), float(k)) for k in KEYS])
    project = load_project(root)
    store = _stores(tmp_path, kind, prefix, "s")
    materialize(project, store=store, now=_day(2))
    clean = serving_skew(project, "ev", store=store, now=_day(2))
    assert clean.mismatched == 0 and clean.features[0].compared == len(KEYS)
    # new rows published but not materialised: the online store is stale for two keys
    write_events(root, [(1, _day(2), _day(2), 100.0), (4, _day(2), _day(2), 400.0)])
    stale = serving_skew(project, "ev", store=store, now=_day(2))
    assert stale.mismatched == 2
    assert sorted(e["customer_id"] for e in stale.features[0].examples) == [1, 4]
    assert {e["offline"] for e in stale.features[0].examples} == {100.0, 400.0}
    # PSI: a training set with the same distribution is stable, a shifted one is not
    same = pa.table({"spend": [float(k) for k in KEYS]})
    assert serving_skew(project, "ev", store=store, now=_day(2), training=same).features[
        0
    ].psi == pytest.approx(0.0)
    assert psi([1.0] * 90 + [None] * 10, [None] * 100) > 0.25
    assert psi(["a", "b"] * 50, ["a", "b"] * 50) == pytest.approx(0.0)


def test_cli_materialize_then_skew(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from lockgate.cli.app import app

    root = events_project(tmp_path / "p")
    write_events(root, [(k, _day(1), _day(1), float(k)) for k in KEYS])
    runner = CliRunner()
    res = runner.invoke(app, ["features", "materialize", "-p", str(root), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["ev"]["mode"] == "full"
    res = runner.invoke(app, ["features", "skew", "ev", "-p", str(root), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["mismatched"] == 0, res.output
    write_events(root, [(3, _day(2), _day(2), 33.0)])
    res = runner.invoke(app, ["features", "skew", "ev", "-p", str(root), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["mismatched"] == 1, res.output
    res = runner.invoke(app, ["features", "materialize", "-p", str(root)])
    assert res.exit_code == 0 and "ev: incremental (v0 -> v1): 1 written" in res.output
    res = runner.invoke(app, ["features", "skew", "ev", "-p", str(root)])
    assert res.exit_code == 0 and "ev:spend: 0 of 6 differ" in res.output, res.output


def test_an_empty_feature_table_and_naive_vs_zoned_now(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p")
    write_events(root, [])
    project = load_project(root)
    store = SQLiteOnlineStore(tmp_path / "o.db")
    r = materialize(project, store=store, now=_day(1))["ev"]
    assert (r.mode, r.written, r.deleted) == ("full", 0, 0)
    out = get_online_features(project, "ev", {"customer_id": [1]}, store=store, now=_day(1))
    assert out["results"][1]["statuses"] == ["NOT_FOUND"]  # type: ignore[index]
    write_events(root, [(1, _day(1), _day(1), 1.0)])
    # the same instant, naive (UTC) then zoned: not "earlier", so incremental, not full
    r = materialize(project, store=store, now=_day(1).replace(tzinfo=UTC))["ev"]
    assert (r.mode, r.written) == ("incremental", 1)
