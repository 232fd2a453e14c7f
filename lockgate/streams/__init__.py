"""Streams (issue #14): micro-batches from Redis Streams / NATS JetStream, parsed, de-duplicated,
checked and masked, committed exactly once into a Delta table (see :mod:`.runner`)."""

from lockgate.streams.config import StreamSpec
from lockgate.streams.runner import BatchCounts, StreamReport, StreamRunner

__all__ = ["BatchCounts", "StreamReport", "StreamRunner", "StreamSpec"]
