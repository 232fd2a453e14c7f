"""The Redis online store (``online_store: {type: redis, url: …}``; the ``streams`` extra's
``redis`` client).

One string key per (view, entity): ``<prefix><view>:<key as JSON>`` holding
``<event time µs>|<values as JSON>``; the view's mark in ``<prefix><view>@mark``. Reads are
one ``MGET`` per view. Writes are pipelined (``batch_size`` commands per round trip, no
MULTI: a batch cut short is completed by re-running it, since the mark is written last and
every write is an idempotent overwrite).

TTL: the same exclusive bound as training sets and the read path (a vector is served while
``now < event_ts + ttl``). Each key expires at ``event_ts + ttl`` (``SET … PXAT``), rounded
up to the millisecond, so Redis only drops vectors the read path already refuses; a vector
already past its TTL when materialised is not stored (reads say ``NOT_FOUND`` where SQLite,
which keeps it, says ``OUTSIDE_MAX_AGE``: the value — NULL — is the same).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lockgate.errors import TransientError, UsageError
from lockgate.features.online import (
    Key,
    Mark,
    OnlineStore,
    Vector,
    _dumps,
    _from_micros,
    _key_text,
    _micros,
    chunks,
)
from lockgate.redact import redact

if TYPE_CHECKING:
    from lockgate.features.store_config import OnlineStoreConfig
    from lockgate.project import Project

_GLOB = re.compile(r"([*?\[\]\\])")


class OnlineStoreError(TransientError):
    """The online store's server cannot be reached or refused a command."""


class RedisOnlineStore(OnlineStore):
    """Vectors as Redis strings under ``key_prefix`` (see the module docs)."""

    name = "redis"

    def __init__(self, url: str, key_prefix: str, *, batch_size: int = 1_000) -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - the extra is installed in dev
            raise UsageError(
                "the Redis online store needs the redis client",
                hint="pip install 'lockgate[streams]' (or redis)",
            ) from e
        self.url = url
        self.prefix = key_prefix
        self.batch_size = batch_size
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client = redis.Redis.from_url(url)

    def _key(self, view: str, key: Key) -> bytes:
        return f"{self.prefix}{view}:{_key_text(key)}".encode()

    def _mark_key(self, view: str) -> bytes:
        return f"{self.prefix}{view}@mark".encode()

    def _fail(self, e: BaseException, action: str) -> OnlineStoreError:
        return OnlineStoreError(
            f"Redis online store at {redact(self.url)}: {action} failed: {redact(str(e))}",
            hint="is the server running? check online_store.url in lockgate.yaml",
        )

    def describe(self) -> str:
        return f"redis:{redact(self.url)} prefix {self.prefix!r}"

    @contextmanager
    def _writer(self, view: str, *, replace: bool, ttl: timedelta | None) -> Iterator[_RedisBatch]:
        batch = _RedisBatch(self, view, set() if replace else None, ttl)
        try:
            yield batch
        except self._errors as e:
            raise self._fail(e, f"writing view '{view}'") from e

    def _drop_others(self, view: str, kept: set[bytes]) -> int:
        """Unlink the view's keys a full refresh did not write (SCAN: never blocks Redis)."""
        pattern = _GLOB.sub(r"\\\1", f"{self.prefix}{view}:") + "*"
        stale = (k for k in self.client.scan_iter(match=pattern, count=1_000) if k not in kept)
        n = 0
        for part in chunks(stale, self.batch_size):
            self.client.unlink(*part)
            n += len(part)
        return n

    def read(self, view: str, keys: Sequence[Key]) -> list[Vector | None]:
        if not keys:
            return []
        try:
            raw: list[Any] = self.client.mget([self._key(view, k) for k in keys])
        except self._errors as e:
            raise self._fail(e, f"reading view '{view}'") from e
        return [None if v is None else _unpack(v) for v in raw]

    def mark(self, view: str) -> Mark | None:
        try:
            raw = self.client.get(self._mark_key(view))
        except self._errors as e:
            raise self._fail(e, f"reading the mark of view '{view}'") from e
        return Mark.loads(raw)  # bytes | None (no decode_responses)

    def keys(self, view: str) -> list[bytes]:
        """Every vector key of ``view`` (tests and maintenance; SCAN)."""
        pattern = _GLOB.sub(r"\\\1", f"{self.prefix}{view}:") + "*"
        return sorted(self.client.scan_iter(match=pattern, count=1_000))

    def close(self) -> None:
        self.client.close()


class _RedisBatch:
    """One batch of a view: pipelined ``SET … PXAT`` / ``UNLINK`` (no MULTI: see the module)."""

    def __init__(
        self, store: RedisOnlineStore, view: str, kept: set[bytes] | None, ttl: timedelta | None
    ) -> None:
        self.store, self.view, self.kept = store, view, kept
        self.ttl_ms = None if ttl is None else ttl // timedelta(microseconds=1)
        self.now_ms = int(datetime.now(UTC).timestamp() * 1000)

    def upsert(self, part: list[tuple[Key, Vector]]) -> None:
        pipe = self.store.client.pipeline(transaction=False)
        for key, vec in part:
            k = self.store._key(self.view, key)
            us = _micros(vec.event_ts)
            if self.kept is not None:
                self.kept.add(k)
            value = b"%d|%s" % (us, _dumps(vec.values).encode())
            if self.ttl_ms is None:
                pipe.set(k, value)
                continue
            expire = -(-(us + self.ttl_ms) // 1000)  # ceil to the millisecond
            if expire <= self.now_ms:
                pipe.unlink(k)  # already outside the TTL: the read path refuses it
            else:
                pipe.set(k, value, pxat=expire)
        pipe.execute()

    def delete(self, part: list[Key]) -> int:
        self.store.client.unlink(*[self.store._key(self.view, k) for k in part])
        return len(part)

    def finish(self) -> int:
        return 0 if self.kept is None else self.store._drop_others(self.view, self.kept)

    def mark(self, mark: Mark) -> None:
        self.store.client.set(self.store._mark_key(self.view), mark.dumps().encode())


def _unpack(raw: bytes) -> Vector:
    import json

    ts, _, values = raw.partition(b"|")
    return Vector(_from_micros(int(ts)), json.loads(values))


def open_redis(project: Project, cfg: OnlineStoreConfig) -> RedisOnlineStore:
    """The store of ``online_store: {type: redis}``: its URL's references resolved (and
    remembered for masking), the prefix defaulting to ``lockgate:<project>:``."""
    from lockgate.connections import Connection
    from lockgate.features.store_config import RedisOnlineConfig

    assert isinstance(cfg, RedisOnlineConfig)
    url = Connection("online_store", "redis", {"url": cfg.url}, project.root).resolve()["url"]
    prefix = cfg.key_prefix if cfg.key_prefix is not None else f"lockgate:{project.name}:"
    return RedisOnlineStore(str(url), prefix, batch_size=cfg.batch_size)
