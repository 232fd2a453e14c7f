"""The stages of a step, one module each, in the order :data:`lockgate.runloop.step.STAGES`
runs them: resolve → stage → contract (validate_checks, contract) → audit → gate → split →
quarantine → publish → finish.

Each is a small function ``(ctx, state) -> None`` over the run's
:class:`~lockgate.runloop.context.StepContext` and the step's
:class:`~lockgate.runloop.context.StepState`, readable alone (as sqlglot's optimizer rules
are). A stage ends the step early with ``state.end(...)`` (up to date, nothing new, blocked
by the gate) and raises a ``LockgateError`` to fail it (the runner retries transient ones)."""
