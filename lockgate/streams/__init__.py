"""Streams (issue #14): micro-batches from Redis Streams / NATS JetStream, parsed,
de-duplicated, checked and masked, committed exactly once into a Delta table.

:mod:`.config` (definitions), :mod:`.sources` (broker consumers), :mod:`.parse`,
:mod:`.dedup`, :mod:`.runner` (the batch loop); masking is :mod:`lockgate.masking`."""
