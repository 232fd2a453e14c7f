"""``online_store:`` in ``lockgate.yaml``: which online store materialisation writes to.

Each store type owns its config class (a ``type:`` discriminator); the project config only
holds the union. Nothing here imports a driver::

    online_store: {type: sqlite, path: .lockgate/online.db}        # the default
    online_store: {type: redis, url: "redis://:${REDIS_PW}@cache:6379/0", key_prefix: "shop:"}

The Redis URL may reference secrets like a connection (``${ENV}``, ``file:/path``); they
are resolved when the store opens and masked in every message.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SQLiteOnlineConfig(_Frozen):
    """One SQLite file; a table per feature view (one row per entity: the packed vector)."""

    type: Literal["sqlite"] = "sqlite"
    path: str = Field(
        default=".lockgate/online.db", description="the database file, relative to the project"
    )
    batch_size: int = Field(default=10_000, ge=1, description="rows per INSERT batch")


class RedisOnlineConfig(_Frozen):
    """A Redis server: one string key per (view, entity) holding the packed vector, expiring
    when the view's TTL runs out; writes are pipelined."""

    type: Literal["redis"]
    url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="redis:// or rediss:// URL (may hold ${ENV} / file: references)",
    )
    key_prefix: str | None = Field(
        default=None,
        description="prefix of every key (default 'lockgate:<project>:'); give each "
        "project/environment sharing a server its own",
    )
    batch_size: int = Field(default=1_000, ge=1, description="commands per pipeline round trip")


OnlineStoreConfig = Annotated[SQLiteOnlineConfig | RedisOnlineConfig, Field(discriminator="type")]
