"""Parent → child endpoints of ``type: rest`` against a real local HTTP server: pagination
on both levels, a parent with zero children, parent fields carried into child records, a
child answering 404 (fail, or a named skip) or 500 (retried; out of retries: nothing
published), parent records without the field or repeated, and URL quoting of parent
values. Every parent record that opens no child read is counted by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import lockgate
from lockgate.errors import LockgateError
from lockgate.sources._rest_config import RestSourceSpec
from tests.run.helpers import make_project
from tests.sources.rest_server import Reply, Request, Server, running

pytest.importorskip("httpx")

FAST_RETRY = {"attempts": 3, "backoff": 0.001, "max_wait": 5}
API_KEY = "pk-parent-SECRET-7731"

#: issue number -> how many comments it has (9 has none; 4 has 5 = three child pages)
COMMENTS = {1: 2, 2: 0, 3: 1, 4: 5, 5: 3, 6: 2, 7: 1, 8: 4, 9: 0, 10: 2, 11: 1}
CHILD_PAGE = 2


@pytest.fixture
def server() -> Iterator[Server]:
    with running() as s:
        yield s


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_TEST_PARENT_KEY", API_KEY)


def comment_id(issue: int, k: int) -> int:
    return issue * 100 + k


def issues_route(server: Server, numbers: list[Any], per_page: int = 4) -> None:
    """The parent: page-number pagination over ``numbers`` (4 a page, then an empty page)."""

    def pages(r: Request) -> Reply:
        p = int(r.query["page"])
        chunk = numbers[(p - 1) * per_page : p * per_page]
        return 200, {}, {"issues": [{"number": n, "title": f"t{n}"} for n in chunk]}

    server.route("/issues", pages)


def comments_route(server: Server, fail: dict[int, list[int]] | None = None) -> None:
    """The child: ``/issues/<n>/comments``, cursor pagination (2 a page). ``fail[n]`` is a
    list of statuses answered (in order) before the real pages of issue ``n``."""
    fail = {k: list(v) for k, v in (fail or {}).items()}

    def pages(r: Request) -> Reply:
        n = int(r.path.split("/")[2])
        if fail.get(n):
            return fail[n].pop(0), {}, {"error": "boom"}
        total = COMMENTS.get(n)
        if total is None:
            return 404, {}, {"error": "no such issue"}
        start = int(r.query.get("after", "0"))
        body = [
            {"id": comment_id(n, k), "body": f"c{k}"}
            for k in range(start, min(start + CHILD_PAGE, total))
        ]
        nxt = start + CHILD_PAGE if start + CHILD_PAGE < total else None
        return 200, {}, {"data": body, "next": nxt}

    server.route("/issues/*", pages)


def project(root: Path, server: Server, **source: Any) -> Path:
    src = {
        "type": "rest",
        "base_url": server.url,
        "retry": FAST_RETRY,
        "parent": {
            "name": "issues",
            "path": "/issues",
            "paginator": {"type": "page_number"},
            "record_path": "issues",
        },
        "path": "/issues/{issues.number}/comments",
        "paginator": {"type": "cursor", "cursor_path": "next", "cursor_param": "after"},
        "record_path": "data",
        "primary_key": ["id"],
        **source,
    }
    ds = {"name": "comments", "source": src, "retry": {"retries": 0}}
    return make_project(root, [ds])


def expected_ids(numbers: list[int]) -> list[int]:
    return sorted(comment_id(n, k) for n in numbers for k in range(COMMENTS.get(n, 0)))


def accounted(step: Any) -> None:
    assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    assert step.rows_skipped == sum(step.skip_reasons.values())


@pytest.mark.slow
def test_every_child_of_every_parent_once_with_parent_fields(
    tmp_path: Path, server: Server
) -> None:
    numbers = list(COMMENTS)  # 11 parents over 3 parent pages (+ an empty one)
    issues_route(server, numbers)
    comments_route(server)
    root = project(tmp_path / "p", server, include_from_parent=["number", "title"])
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    table = lockgate.read(root, "comments").to_pylist()
    got = sorted(r["id"] for r in table)
    assert got == expected_ids(numbers)  # zero gaps, zero duplicates
    assert len(got) == len(set(got)) == sum(COMMENTS.values())
    for r in table:  # each child carries its own parent's fields
        assert r["_issues_number"] == r["id"] // 100
        assert r["_issues_title"] == f"t{r['id'] // 100}"
    accounted(step)
    assert step.rows_skipped == 0 and step.warnings == []
    # one child read per parent; issue 4 (5 comments) took 3 pages, the empty ones 1
    child = [r for r in server.log if r.path.startswith("/issues/")]
    by_issue: dict[int, list[str | None]] = {}
    for r in child:
        by_issue.setdefault(int(r.path.split("/")[2]), []).append(r.query.get("after"))
    assert set(by_issue) == set(numbers)
    assert by_issue[4] == [None, "2", "4"] and by_issue[9] == [None] and by_issue[2] == [None]
    assert [r.query["page"] for r in server.requests("/issues")] == ["1", "2", "3", "4"]


@pytest.mark.slow
def test_only_parents_with_zero_children_publish_an_empty_table(
    tmp_path: Path, server: Server
) -> None:
    issues_route(server, [2, 9])
    comments_route(server)
    root = project(tmp_path / "p", server)
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert step.rows_in == 0 and step.rows_out == 0 and step.rows_skipped == 0


@pytest.mark.slow
def test_child_404_fails_the_step_by_default_nothing_published(
    tmp_path: Path, server: Server
) -> None:
    issues_route(server, [1, 404, 3])  # issue 404 has no comments endpoint
    comments_route(server)
    root = project(tmp_path / "p", server)
    result = lockgate.run(root)
    step = result.steps[0]
    assert not result.ok
    assert "404" in (step.error or "") and "/issues/404/comments" in (step.error or "")
    assert step.rows_out == 0
    with pytest.raises(LockgateError):  # nothing was published: the table does not exist
        lockgate.read(root, "comments")


@pytest.mark.slow
def test_child_404_skipped_by_name_when_asked(tmp_path: Path, server: Server) -> None:
    issues_route(server, [1, 404, 3, 405, 5])
    comments_route(server)
    root = project(
        tmp_path / "p",
        server,
        child_not_found="skip",
        auth={
            "type": "api_key",
            "name": "key",
            "key": "${LG_TEST_PARENT_KEY}",
            "location": "query",
        },
    )
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert sorted(lockgate.read(root, "comments").column("id").to_pylist()) == expected_ids(
        [1, 3, 5]
    )
    assert step.skip_reasons == {"child_not_found": 2}
    accounted(step)
    (warning,) = step.warnings
    assert "2 issues record(s) skipped (child_not_found)" in warning
    assert "/issues/404/comments" in warning and "/issues/405/comments" in warning
    assert API_KEY not in warning and API_KEY not in json.dumps(step.skip_reasons)
    # the key was sent on every request, parent and child
    assert all(r.query.get("key") == API_KEY for r in server.log)


@pytest.mark.slow
def test_child_500_is_retried_and_nothing_is_lost(tmp_path: Path, server: Server) -> None:
    issues_route(server, [1, 4, 5])
    comments_route(server, fail={4: [500, 503], 5: [429]})
    root = project(tmp_path / "p", server)
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    ids = sorted(lockgate.read(root, "comments").column("id").to_pylist())
    assert ids == expected_ids([1, 4, 5])
    accounted(step)


@pytest.mark.slow
def test_child_500_beyond_the_retries_fails_nothing_published(
    tmp_path: Path, server: Server
) -> None:
    issues_route(server, [1, 4, 5])
    comments_route(server, fail={5: [500] * 10})
    root = project(tmp_path / "p", server)
    result = lockgate.run(root)
    step = result.steps[0]
    assert not result.ok
    assert "gave up after 4 attempts" in (step.error or "")
    assert "nothing was published" in (step.error or "")
    with pytest.raises(LockgateError):
        lockgate.read(root, "comments")


@pytest.mark.slow
def test_parents_without_the_field_or_repeated_are_skipped_by_name(
    tmp_path: Path, server: Server
) -> None:
    def parents(r: Request) -> Reply:
        p = int(r.query["page"])
        recs: list[Any] = [
            [{"number": 1}, {"title": "no number"}, {"number": None}, {"number": [1, 2]}],
            [{"number": 3}, {"number": 1}, "not an object", {"number": 5}],
            [],
        ][p - 1]
        return 200, {}, {"issues": recs}

    server.route("/issues", parents)
    comments_route(server)
    root = project(tmp_path / "p", server)
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert sorted(lockgate.read(root, "comments").column("id").to_pylist()) == expected_ids(
        [1, 3, 5]
    )
    assert step.skip_reasons == {"parent_field_missing": 4, "duplicate_parent": 1}
    accounted(step)
    text = " | ".join(step.warnings)
    assert "page 1 record 2" in text and "page 2 record 2" in text and "page 2 record 3" in text
    assert sum(1 for r in server.log if r.path == "/issues/1/comments") == 1


@pytest.mark.slow
def test_parent_values_are_quoted_in_the_path_and_passed_in_params(
    tmp_path: Path, server: Server
) -> None:
    def users(r: Request) -> Reply:
        return 200, {}, [{"login": "a/b c?d", "org": {"id": 7}}]

    seen: list[Request] = []

    def repos(r: Request) -> Reply:
        seen.append(r)
        return 200, {}, [{"id": 1, "name": "r1"}]

    server.route("/users", users)
    server.route("/users/*", repos)
    src = {
        "type": "rest",
        "base_url": server.url,
        "retry": FAST_RETRY,
        "parent": {"name": "users", "path": "/users"},
        "path": "/users/{users.login}/repos",
        "params": {"org": "{users.org.id}", "fixed": "x"},
        "include_from_parent": ["org.id"],
    }
    root = make_project(tmp_path / "p", [{"name": "repos", "source": src}])
    result = lockgate.run(root)
    assert result.ok, result.steps[0].error
    (req,) = seen
    assert req.path == "/users/a%2Fb%20c%3Fd/repos"
    assert req.query == {"org": "7", "fixed": "x"}
    (row,) = lockgate.read(root, "repos").to_pylist()
    assert row["_users_org_id"] == 7


def test_config_names_the_parent_consistently() -> None:
    base = {"base_url": "http://127.0.0.1:1"}
    ok = RestSourceSpec(**base, path="/i/{issues.number}", parent={"name": "issues"})
    assert ok.parent is not None and ok.parent.name == "issues"
    bad: list[dict[str, Any]] = [
        {"path": "/i/{issues.number}"},  # a placeholder without a parent
        {"path": "/i", "parent": {"name": "issues"}},  # a parent never used
        {"path": "/i/{issue.number}", "parent": {"name": "issues"}},  # a typo in the name
        {"path": "/i", "include_from_parent": ["id"]},  # parent fields without a parent
        {"path": "/i/{x.y}", "parent": {"name": "bad name"}},
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            RestSourceSpec(**base, **fields)


@pytest.mark.slow
def test_nested_values_have_the_same_type_with_or_without_a_bad_record(
    tmp_path: Path, server: Server
) -> None:
    """Lists and objects are staged as JSON by the fast read (all records fine) and by the
    record-level path (a bad record forces it): the published column types agree."""
    good = [{"id": i, "tags": ["a", str(i)], "meta": {"k": i}} for i in range(1, 6)]
    bad = [*good, "not an object"]
    schemas = []
    for name, body in (("good", good), ("bad", bad)):
        server.route(f"/{name}", lambda r, b=body: (200, {}, b))
        src = {"type": "rest", "base_url": server.url, "path": f"/{name}", "retry": FAST_RETRY}
        root = make_project(tmp_path / name, [{"name": "items", "source": src}])
        result = lockgate.run(root)
        step = result.steps[0]
        assert result.ok, step.error
        assert step.rows_out == 5 and step.rows_quarantined == (1 if name == "bad" else 0)
        table = lockgate.read(root, "items")
        schemas.append({f.name: str(f.type) for f in table.schema})
        rows = sorted(table.to_pylist(), key=lambda r: r["id"])
        assert [json.loads(r["tags"]) for r in rows] == [["a", str(i)] for i in range(1, 6)]
        assert [json.loads(r["meta"]) for r in rows] == [{"k": i} for i in range(1, 6)]
    assert schemas[0] == schemas[1]


@pytest.mark.slow
def test_dot_segment_or_empty_parent_values_never_read_another_endpoint(
    tmp_path: Path, server: Server
) -> None:
    """A parent value '..' would make ``/users/../repos`` — the client resolves it to
    ``/repos``, another endpoint whose records would be published as that user's. Such a
    parent (and '.', '') is skipped by name; '...' and '%2E%2E' are ordinary values."""

    def users(r: Request) -> Reply:
        logins = ["ok", "..", ".", "", "...", "%2E%2E", "ünï/cødé"]
        return 200, {}, [{"login": x} for x in logins]

    def repos(r: Request) -> Reply:
        return 200, {}, [{"id": r.path, "name": "r"}]

    wrong: list[Request] = []
    server.route("/users", users)
    server.route("/users/*", repos)
    server.route("/repos", lambda r: (wrong.append(r), (200, {}, [{"id": "WRONG"}]))[1])
    server.route("/users//repos", lambda r: (wrong.append(r), (200, {}, [{"id": "WRONG"}]))[1])
    src = {
        "type": "rest",
        "base_url": server.url,
        "retry": FAST_RETRY,
        "parent": {"name": "users", "path": "/users"},
        "path": "/users/{users.login}/repos",
    }
    root = make_project(tmp_path / "p", [{"name": "repos", "source": src}])
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert wrong == []
    ids = sorted(lockgate.read(root, "repos").column("id").to_pylist())
    assert "WRONG" not in ids
    assert ids == sorted(
        [
            "/users/ok/repos",
            "/users/.../repos",
            "/users/%252E%252E/repos",
            "/users/%C3%BCn%C3%AF%2Fc%C3%B8d%C3%A9/repos",
        ]
    )
    assert step.skip_reasons == {"parent_value_unsafe": 3}
    accounted(step)
    assert "parent_value_unsafe" in " ".join(step.warnings)


@pytest.mark.slow
def test_a_query_in_base_url_stays_the_query_of_parent_and_child_reads(
    tmp_path: Path, server: Server
) -> None:
    """``base_url: https://api/v1?key=${KEY}`` (or ``?api-version=2``): the path goes before
    the query, not into it, and httpx's ``params=`` does not drop it. Before, the parent read
    went to ``/v1`` without the query and its records silently opened no child read."""
    server.route("/v1/issues", lambda r: (200, {}, [{"number": 1}, {"number": 2}]))
    server.route("/v1/issues/*", lambda r: (200, {}, [{"id": r.path}]))
    wrong: list[Request] = []
    server.route("/v1", lambda r: (wrong.append(r), (200, {}, [{"id": "WRONG"}]))[1])
    src = {
        "type": "rest",
        "base_url": server.url + "/v1?api-version=2&key=${LG_TEST_PARENT_KEY}",
        "retry": FAST_RETRY,
        "parent": {"name": "issues", "path": "/issues?state=all"},
        "path": "/issues/{issues.number}/comments",
    }
    root = make_project(tmp_path / "p", [{"name": "c", "source": src}])
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert wrong == []
    ids = sorted(lockgate.read(root, "c").column("id").to_pylist())
    assert ids == ["/v1/issues/1/comments", "/v1/issues/2/comments"]
    accounted(step)
    assert step.rows_skipped == 0
    want = {"api-version": "2", "key": API_KEY}
    assert server.requests("/v1/issues")[0].query == {**want, "state": "all"}
    assert all(r.query == want for r in server.log if r.path.endswith("/comments"))
    for f in (tmp_path / "p").rglob("*"):
        assert not f.is_file() or API_KEY.encode() not in f.read_bytes(), f


@pytest.mark.slow
def test_a_source_without_a_fingerprint_logs_no_stale_pin_warning(
    tmp_path: Path, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A REST source is pinned per run ({type, run: <run id>}); the plan's pin
    ({run: 'plan'}) differs by construction. Every run logged "the plan pinned input
    'source' ... (it changed after planning)", a false alarm drowning real ones."""
    server.route("/items", lambda r: (200, {}, [{"id": 1}]))
    src = {"type": "rest", "base_url": server.url, "path": "/items", "retry": FAST_RETRY}
    root = make_project(tmp_path / "p", [{"name": "items", "source": src}])
    with caplog.at_level("WARNING"):
        result = lockgate.run(root)
    assert result.ok, result.steps[0].error
    assert result.steps[0].rows_out == 1
    assert "changed after planning" not in caplog.text


@pytest.mark.slow
def test_a_child_next_link_to_another_host_never_gets_the_credentials(
    tmp_path: Path, server: Server
) -> None:
    """The API key goes with every request (query) and so do auth headers: a next link
    pointing at another host (a wrong next_url_path, a hostile or moved API) fails the step
    instead of sending them there; a next link on the same host is followed."""
    server.route("/issues", lambda r: (200, {}, [{"number": 1}, {"number": 2}]))

    def child(r: Request) -> Reply:
        n = r.path.split("/")[2]
        if r.query.get("p") == "2":
            return 200, {}, {"data": [{"id": f"{n}-2"}], "next": None}
        host = "127.0.0.1" if n == "1" else "localhost"
        port = server.url.rsplit(":", 1)[1]
        nxt = f"http://{host}:{port}/issues/{n}/comments?p=2"
        return 200, {}, {"data": [{"id": f"{n}-1"}], "next": nxt}

    server.route("/issues/*", child)
    auth = {"type": "api_key", "name": "key", "key": "${LG_TEST_PARENT_KEY}", "location": "query"}
    root = project(
        tmp_path / "p",
        server,
        parent={"name": "issues", "path": "/issues"},
        record_path="data",
        paginator={"type": "json_link", "next_url_path": "next"},
        auth=auth,
    )
    result = lockgate.run(root)
    step = result.steps[0]
    assert not result.ok
    assert "next link points to another host" in (step.error or "")
    assert "localhost" in (step.error or "") and API_KEY not in (step.error or "")
    # issue 1 followed its same-host link; issue 2's foreign link was never requested
    assert [r.query.get("p") for r in server.log if r.path == "/issues/1/comments"] == [None, "2"]
    assert [r.query.get("p") for r in server.log if r.path == "/issues/2/comments"] == [None]
    with pytest.raises(LockgateError):
        lockgate.read(root, "comments")


@pytest.mark.slow
def test_a_redirect_to_another_host_never_gets_the_api_key_header(
    tmp_path: Path, server: Server
) -> None:
    """httpx drops Authorization on a cross-host redirect but keeps custom headers: an API
    key in ``X-API-Key`` went along to whatever host a child endpoint redirected to."""
    port = server.url.rsplit(":", 1)[1]
    server.route("/issues", lambda r: (200, {}, [{"number": 1}]))
    server.route(
        "/issues/*",
        lambda r: (302, {"Location": f"http://localhost:{port}/elsewhere"}, b""),
    )
    server.route("/elsewhere", lambda r: (200, {}, [{"id": 1}]))
    auth = {"type": "api_key", "name": "X-API-Key", "key": "${LG_TEST_PARENT_KEY}"}
    root = project(
        tmp_path / "p",
        server,
        parent={"name": "issues", "path": "/issues"},
        record_path=None,
        paginator={"type": "single_page"},
        auth=auth,
    )
    result = lockgate.run(root)
    step = result.steps[0]
    assert not result.ok
    assert "refusing a request to http://localhost" in (step.error or "")
    assert server.requests("/elsewhere") == []
    assert not any(API_KEY in json.dumps(r.headers) for r in server.log if r.path == "/elsewhere")
