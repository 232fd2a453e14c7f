"""The dashboard's own state: daily score rollup (incremental, exact), token lifecycle,
the lineage layout on a large DAG."""

from __future__ import annotations

from pathlib import Path

from lockgate.state import StateStore
from lockgate.state import dashboard as dash
from lockgate.ui.lineage import edges_of, layout, neighbourhood


def test_daily_scores_roll_up_incrementally(tmp_path: Path) -> None:
    st = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    st.record_scores("r1", "p", "a", {"overall": 0.5, "validity": 1.0})
    st.record_scores("r2", "p", "b", {"overall": 1.0})
    assert dash.rollup_daily_scores(st) == 3
    assert dash.rollup_daily_scores(st) == 0  # nothing new: nothing added twice
    rows = {r["dimension"]: r["score"] for r in dash.daily_scores(st, "p")}
    assert rows == {"overall": 0.75, "validity": 1.0}
    st.record_scores("r3", "p", "a", {"overall": 0.0})
    assert dash.rollup_daily_scores(st) == 1
    only_a = {r["dimension"]: r["score"] for r in dash.daily_scores(st, "p", "a")}
    assert only_a == {"overall": 0.25, "validity": 1.0}
    assert dash.daily_scores(st, "other") == []
    st.close()


def test_token_lifecycle(tmp_path: Path) -> None:
    st = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    assert not dash.has_tokens(st)
    info, secret = dash.create_token(st, "ci", "operator", ["orders"])
    assert secret.startswith(dash.TOKEN_PREFIX) and dash.has_tokens(st)
    found = dash.verify_token(st, secret)
    assert found is not None and (found.role, found.datasets) == ("operator", ("orders",))
    assert dash.verify_token(st, secret + "x") is None
    assert dash.revoke_token(st, info.token_id) and not dash.revoke_token(st, info.token_id)
    assert dash.verify_token(st, secret) is None and not dash.has_tokens(st)
    st.close()


def test_lineage_layout_of_a_large_dag() -> None:
    deps = {f"d{i}": tuple(f"d{j}" for j in (i // 2, i // 3) if j < i) for i in range(500)}
    names = tuple(sorted(deps))
    lay = layout(names, edges_of(deps))
    assert set(lay.nodes) == set(names) and len(set(lay.nodes.values())) == 500
    for up, ds in lay.edges:  # edges point right: a dataset sits after all its inputs
        assert lay.nodes[up][0] < lay.nodes[ds][0]
    assert layout(names, edges_of(deps)) is lay  # cached per DAG hash
    near = neighbourhood(deps, "d10", 1)
    assert near == {"d10", "d5", "d3", "d20", "d21", "d30", "d31", "d32"}
