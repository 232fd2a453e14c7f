"""A broker's stream deleted and recreated under a stream's table: its sequence numbers
restart, below the position the table holds. Reading on from that position would skip the
new stream's first messages without a trace; the consumer refuses instead."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lockgate.errors import LockgateError
from lockgate.project.loader import load_project
from lockgate.streams.service import run_stream
from tests.streams.conftest import event, stream_def, write_project
from tests.streams.test_nats import _delete, _setup, nats_stream  # noqa: F401 - fixture


def test_a_recreated_nats_stream_is_refused_not_skipped(tmp_path: Path, nats_stream: str) -> None:
    subject = nats_stream.lower() + ".events"
    asyncio.run(_setup(nats_stream, subject, [event(i) for i in range(10)]))
    source = {"type": "nats", "stream": nats_stream, "subject": subject, "durable": "lg"}
    root = write_project(tmp_path, [stream_def(source)])
    assert run_stream(load_project(root), "events", until_idle=True).counts.published == 10
    asyncio.run(_delete(nats_stream))
    asyncio.run(_setup(nats_stream, subject, [event(i) for i in range(10, 14)]))  # seqs 1..4
    with pytest.raises(LockgateError, match="recreated") as e:
        run_stream(load_project(root), "events", until_idle=True)
    assert "10" in str(e.value) and "4" in str(e.value)
