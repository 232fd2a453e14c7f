from __future__ import annotations

import pytest

from lockgate.errors import ConfigError
from lockgate.project import Project, load_project
from tests.project.conftest import ProjectFactory

# a -> b -> d, a -> c -> d, e independent
DAG = """
datasets:
  - name: d
    transform: {sql: select * from b join c using (id)}
  - name: b
    transform: {sql: select * from a}
  - name: c
    transform: {sql: select * from a}
  - name: a
    source: {type: file, path: a.csv}
  - name: e
    source: {type: file, path: e.csv}
"""


@pytest.fixture
def project(make_project: ProjectFactory) -> Project:
    return load_project(make_project({"datasets/dag.yaml": DAG}))


def test_topological_order_keeps_definition_order_for_ties(project: Project) -> None:
    assert list(project.datasets) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ([], ["a", "b", "c", "d", "e"]),
        (["b"], ["b"]),
        (["b+"], ["b", "d"]),
        (["+b"], ["a", "b"]),
        (["+d"], ["a", "b", "c", "d"]),
        (["a+"], ["a", "b", "c", "d"]),
        (["+b+"], ["a", "b", "d"]),
        (["e,c"], ["c", "e"]),
        (["e c+", "b"], ["b", "c", "d", "e"]),
    ],
)
def test_selection_operators(project: Project, patterns: list[str], expected: list[str]) -> None:
    assert project.select(patterns) == expected


def test_unknown_names_in_selection_all_reported(project: Project) -> None:
    with pytest.raises(ConfigError) as ei:
        project.select(["bb+", "a", "+zzz"])
    problems = ei.value.problems
    assert [p.message for p in problems] == [
        "unknown dataset 'bb' in selection 'bb+'",
        "unknown dataset 'zzz' in selection '+zzz'",
    ]
    assert problems[0].hint == "did you mean 'b'?"


def test_downstream_and_upstream(project: Project) -> None:
    assert project.downstream("a") == ("b", "c")
    assert project.downstream("a", transitive=True) == ("b", "c", "d")
    assert project.upstream("d") == ("b", "c")
    with pytest.raises(ConfigError):
        project.downstream("nope")
