"""OpenLineage events of a run: one START and one final event per step, with the facets
the issue lists, valid against the official schemas; file, HTTP and console transports."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import lockgate
from tests.lineage.helpers import lineage_project
from tests.lineage.ol_spec import SpecValidator, spec_dir
from tests.run.helpers import csv_source, make_project, sql


def events_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(e["job"]["name"].split(".", 1)[1], []).append(e)
    return out


@pytest.fixture
def file_run(tmp_path: Path) -> tuple[Path, Any, list[dict[str, Any]]]:
    root = lineage_project(
        tmp_path / "p", config={"openlineage": {"transport": {"type": "file", "path": "ol.ndjson"}}}
    )
    result = lockgate.run(root)
    return root, result, events_of(root / "ol.ndjson")


def test_every_step_has_a_start_and_a_complete(file_run: Any) -> None:
    _, result, events = file_run
    assert result.ok
    jobs = by_job(events)
    assert set(jobs) == {"raw", "clean", "daily", "feat", "on_feat", "opaque_py"}
    for name, evs in jobs.items():
        assert [e["eventType"] for e in evs] == ["START", "COMPLETE"], name
        assert evs[0]["run"]["runId"] == evs[1]["run"]["runId"]
        parent = evs[1]["run"]["facets"]["parent"]
        assert parent["job"]["name"] == result.project
        assert parent["run"]["runId"].replace("-", "") == result.run_id
    assert len({evs[0]["run"]["runId"] for evs in jobs.values()}) == 6


def test_complete_event_carries_the_facets(file_run: Any) -> None:
    root, result, events = file_run
    clean = by_job(events)["clean"][1]
    out = clean["outputs"][0]
    assert out["name"] == str((root / "warehouse" / "clean").resolve())
    fields = [f["name"] for f in out["facets"]["schema"]["fields"]]
    assert fields == ["id", "amount_eur", "status"]
    lineage = out["facets"]["columnLineage"]["fields"]
    amount = {
        (i["name"].rsplit("/", 1)[1], i["field"], i["transformations"][0]["type"])
        for i in lineage["amount_eur"]["inputFields"]
    }
    assert ("raw", "amount", "DIRECT") in amount and ("raw", "status", "INDIRECT") in amount
    (assertion,) = out["facets"]["dataQualityAssertions"]["assertions"]
    assert assertion == {
        "assertion": "between",
        "success": True,
        "column": "amount_eur",
        "severity": "error",
        "name": "amount_eur_between",
        "actual": "0",
        "params": {},
    }
    step = result.step("clean")
    assert out["facets"]["dataQualityMetrics"]["rowCount"] == step.rows_in
    stats = out["outputFacets"]["outputStatistics"]
    assert stats["rowCount"] == step.rows_out == 3
    assert stats["size"] > 0
    assert out["facets"]["version"]["datasetVersion"] == str(step.output_version)
    facet = clean["run"]["facets"]["lockgate"]
    assert facet["runId"] == result.run_id and facet["batchId"] == step.batch_id
    assert str(facet["inputs"]["raw"]) == clean["inputs"][0]["facets"]["version"]["datasetVersion"]
    assert facet["inputs"]["raw"] == result.step("raw").output_version
    assert clean["job"]["facets"]["sql"]["query"].startswith("select id, amount * 1.1")
    # the raw source: a null count measured by its not_null check
    raw = by_job(events)["raw"][1]["outputs"][0]["facets"]["dataQualityMetrics"]
    assert raw["columnMetrics"] == {"amount": {"nullCount": 1, "quantiles": {}}}


def test_events_match_the_official_schemas(file_run: Any) -> None:
    validator = SpecValidator(spec_dir())
    _, _, events = file_run
    for e in events:
        validator.event(e)
    assert validator.facets_checked >= {
        "SchemaDatasetFacet.json",
        "ColumnLineageDatasetFacet.json",
        "DataQualityAssertionsDatasetFacet.json",
        "DataQualityMetricsDatasetFacet.json",
        "OutputStatisticsOutputDatasetFacet.json",
        "ParentRunFacet.json",
        "JobTypeJobFacet.json",
        "SQLJobFacet.json",
        "DatasetVersionDatasetFacet.json",
    }


def test_blocked_step_fails_and_its_downstream_aborts(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source("raw", "data/raw.csv", columns={"id": "BIGINT", "amount": "DOUBLE"}),
            sql(
                "gated",
                "select id, amount from raw",
                gate="block",
                checks=[{"type": "between", "column": "amount", "min": 100}],
            ),
            sql("after", "select id from gated"),
        ],
        files={"data/raw.csv": "id,amount\n1,5\n2,500\n"},
        config={"openlineage": {"transport": {"type": "file", "path": "ol.ndjson"}}},
    )
    result = lockgate.run(root)
    assert not result.ok
    jobs = by_job(events_of(root / "ol.ndjson"))
    assert [e["eventType"] for e in jobs["gated"]] == ["START", "FAIL"]
    assert [e["eventType"] for e in jobs["after"]] == ["START", "ABORT"]
    fail = jobs["gated"][1]
    assert "errorMessage" in fail["run"]["facets"]
    (a,) = fail["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert a["success"] is False and a["actual"] == "1"
    validator = SpecValidator(spec_dir())
    for e in jobs["gated"] + jobs["after"]:
        validator.event(e)


class _Receiver(BaseHTTPRequestHandler):
    received: queue.Queue[tuple[str, dict[str, Any], str | None]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((self.path, json.loads(body), self.headers.get("Authorization")))
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[str, dict[str, Any], str | None]]]]:
    received: queue.Queue[tuple[str, dict[str, Any], str | None]] = queue.Queue()
    handler = type("Handler", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_transport_posts_every_event(
    tmp_path: Path, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = receiver
    monkeypatch.setenv("OL_TOKEN", "s3cret-token")
    transport = {"type": "http", "url": url, "api_key_env": "OL_TOKEN"}
    root = lineage_project(tmp_path / "p", config={"openlineage": {"transport": transport}})
    result = lockgate.run(root)
    assert result.ok
    # each POST was answered before the run went on: all 12 are queued when run() returns
    got = [received.get(timeout=10) for _ in range(12)]
    assert received.empty()
    assert {path for path, _, _ in got} == {"/api/v1/lineage"}
    assert {auth for _, _, auth in got} == {"Bearer s3cret-token"}
    types = sorted(e["eventType"] for _, e, _ in got)
    assert types == ["COMPLETE"] * 6 + ["START"] * 6


def test_a_dead_receiver_never_fails_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = {"type": "http", "url": f"http://127.0.0.1:{port}", "timeout": 2}
    root = lineage_project(tmp_path / "p", config={"openlineage": {"transport": transport}})
    with caplog.at_level(logging.WARNING, logger="lockgate.lineage.openlineage"):
        result = lockgate.run(root, select=["raw"])
    assert result.ok
    assert caplog.text.count("OpenLineage event not sent") == 2  # START and COMPLETE


def test_console_transport_logs_events(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = lineage_project(
        tmp_path / "p", config={"openlineage": {"transport": {"type": "console"}}}
    )
    with caplog.at_level(logging.INFO, logger="openlineage.client.transport.console"):
        lockgate.run(root, select=["raw"])
    logged = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "openlineage.client.transport.console"
    ]
    assert [e["eventType"] for e in logged] == ["START", "COMPLETE"]


def test_config_is_validated(tmp_path: Path) -> None:
    from lockgate.errors import ConfigError
    from lockgate.project import load_project

    root = lineage_project(tmp_path / "p", config={"openlineage": {"transport": {"type": "kafka"}}})
    with pytest.raises(ConfigError):
        load_project(root)
    cfg = yaml.safe_load((root / "lockgate.yaml").read_text())
    cfg["openlineage"] = {}
    (root / "lockgate.yaml").write_text(yaml.safe_dump(cfg))
    default = load_project(root).config.openlineage
    assert default is not None and default.transport.type == "file"


def test_the_schema_check_catches_a_broken_event(file_run: Any) -> None:
    from jsonschema import ValidationError

    validator = SpecValidator(spec_dir())
    _, _, events = file_run
    event = by_job(events)["clean"][1]
    broken = json.loads(json.dumps(event))
    del broken["outputs"][0]["facets"]["columnLineage"]["fields"]["amount_eur"]["inputFields"][0][
        "field"
    ]
    with pytest.raises(ValidationError):
        validator.event(broken)
    bad_type = {**event, "eventType": "DONE"}
    with pytest.raises(ValidationError):
        validator.event(bad_type)
