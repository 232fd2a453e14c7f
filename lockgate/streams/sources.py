"""Broker consumers: bounded micro-batches (the backpressure) and acknowledgement.

Each consumer turns the broker's position into a :class:`Message` ``seq``: a positive integer
that grows with the position, stored as the sink table's application-transaction version
(Redis ids ``<ms>-<n>`` are encoded as ``ms << 20 | n``; JetStream uses the stream sequence).
Clients (``redis``, ``nats-py``) are imported lazily: they are the ``streams`` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from lockgate.errors import ConfigError, Problem
from lockgate.streams.config import NatsStreamSource, RedisStreamSource, StreamSpec

if TYPE_CHECKING:
    import redis
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

_REDIS_SEQ_BITS = 20


@dataclass(frozen=True)
class Message:
    """One broker message: its position as text, as a growing integer, and its bytes."""

    offset: str
    seq: int
    payload: bytes


class StreamConsumer(Protocol):
    def fetch(self, max_events: int, wait_seconds: float) -> list[Message]:
        """Up to ``max_events`` messages (first the ones delivered but never acknowledged)."""
        ...

    def ack(self, messages: Sequence[Message]) -> None: ...

    def close(self) -> None: ...


def redis_seq(entry_id: str) -> int:
    """``"1700000000000-3"`` → an integer growing with the id.

    >>> redis_seq("1-2") > redis_seq("1-1") and redis_seq("2-0") > redis_seq("1-9")
    True
    """
    ms, _, n = entry_id.partition("-")
    if int(n) >= 1 << _REDIS_SEQ_BITS:
        raise ValueError(f"redis id {entry_id!r}: sequence part too large to encode")
    return int(ms) << _REDIS_SEQ_BITS | int(n)


class RedisConsumer:
    """``XREADGROUP`` with ``COUNT`` on a consumer group; pending entries are re-read first."""

    def __init__(self, spec: RedisStreamSource) -> None:
        import redis

        self.spec = spec
        self.client: redis.Redis = redis.Redis.from_url(spec.url)
        self._pending = True  # after a restart: what was delivered but not acknowledged
        try:
            self.client.xgroup_create(spec.stream, spec.group, id="0", mkstream=True)
        except redis.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    def fetch(self, max_events: int, wait_seconds: float) -> list[Message]:
        if self._pending:
            got = self._read("0", max_events, None)
            if got:
                return got
            self._pending = False
        return self._read(">", max_events, max(int(wait_seconds * 1000), 1))

    def _read(self, start: str, count: int, block: int | None) -> list[Message]:
        s = self.spec
        reply = cast(
            "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None",
            self.client.xreadgroup(
                s.group, s.consumer, {s.stream: start}, count=count, block=block
            ),
        )
        out: list[Message] = []
        for _stream, entries in reply or []:
            for raw_id, fields in entries:
                entry_id = raw_id.decode()
                payload = fields.get(s.field.encode(), b"") if fields else b""
                out.append(Message(entry_id, redis_seq(entry_id), payload))
        return out

    def ack(self, messages: Sequence[Message]) -> None:
        if messages:
            self.client.xack(self.spec.stream, self.spec.group, *[m.offset for m in messages])

    def close(self) -> None:
        self.client.close()


class NatsConsumer:
    """A durable JetStream pull consumer (``AckPolicy.ALL``: one ack per batch)."""

    def __init__(self, spec: NatsStreamSource, ack_wait: float = 30.0) -> None:
        self.spec = spec
        self.loop = asyncio.new_event_loop()
        self.nc, self.js, self.sub = self.loop.run_until_complete(self._connect(ack_wait))
        self._last: dict[int, Msg] = {}

    async def _connect(self, ack_wait: float) -> tuple[NatsClient, JetStreamContext, object]:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig

        nc = await nats.connect(self.spec.url)
        js = nc.jetstream()
        config = ConsumerConfig(ack_policy=AckPolicy.ALL, ack_wait=ack_wait)
        sub = await js.pull_subscribe(
            self.spec.subject, durable=self.spec.durable, stream=self.spec.stream, config=config
        )
        return nc, js, sub

    def fetch(self, max_events: int, wait_seconds: float) -> list[Message]:
        import nats.errors

        try:
            msgs = self.loop.run_until_complete(
                self.sub.fetch(max_events, timeout=max(wait_seconds, 0.05))  # type: ignore[attr-defined]
            )
        except nats.errors.TimeoutError:
            return []
        out = []
        for m in msgs:
            seq = m.metadata.sequence.stream
            self._last[seq] = m
            out.append(Message(str(seq), seq, m.data))
        return out

    def ack(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        last = max(m.seq for m in messages)
        msg = self._last[last]
        self.loop.run_until_complete(msg.ack_sync())
        self._last = {k: v for k, v in self._last.items() if k > last}

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


def consumer_for(spec: StreamSpec) -> StreamConsumer:
    src = spec.source
    if isinstance(src, RedisStreamSource):
        return RedisConsumer(src)
    if isinstance(src, NatsStreamSource):
        return NatsConsumer(src)
    msg = f"stream '{spec.name}': unknown source type"  # pragma: no cover
    raise ConfigError([Problem(msg, spec.defined_in, spec.defined_line)])  # pragma: no cover
