"""contract: the staged schema against the declared and the published one, and the
dataset's checks against the staged columns — before the audit reads a row.

Drift (added, removed, retyped columns) is classified and the dataset's schema policy
applied (:func:`lockgate.runloop.contract.apply_contract`, a pure function); a check naming
a column the data does not have is a config error, all of them reported at once."""

from __future__ import annotations

from lockgate.errors import TerminalError
from lockgate.runloop import merge_keys
from lockgate.runloop.context import StepContext, StepState
from lockgate.runloop.contract import apply_contract
from lockgate.runloop.relations import register_references


def validate_checks(ctx: StepContext, state: StepState) -> None:
    """The dataset's checks (and the implicit ones on merge keys), each valid on the staged
    columns; the datasets they compare with registered as relations."""
    from lockgate.quality import validate_checks as problems_of

    spec = state.spec
    state.staged_columns = columns = ctx.session.columns(state.stage)
    state.checks = [*spec.checks, *merge_keys.implicit_checks(spec)]
    state.references = register_references(ctx, state.checks)
    ref_cols = {name: ctx.session.columns(rel) for name, rel in state.references.items()}
    problems = problems_of(state.checks, columns, file=spec.defined_in, references=ref_cols)
    if not problems:
        return
    n = len(problems)
    where = spec.defined_in or "the dataset's YAML"
    raise TerminalError(
        f"dataset '{spec.name}' has {n} invalid check{'s' if n != 1 else ''} "
        f"({where}): "
        + "; ".join(p.message + (f" ({p.hint})" if p.hint else "") for p in problems),
        hint=f"fix the checks in {where} (staged columns: {', '.join(list(columns)[:20])}"
        f"{', …' if len(columns) > 20 else ''}); nothing was published. Declaring `columns:` "
        "lets `lockgate validate` catch this before running",
    )


def contract(ctx: StepContext, state: StepState) -> None:
    spec, res = state.spec, state.result
    ctx.report(spec.name, "checking schema contract")
    state.contract = result = apply_contract(
        spec.name,
        state.staged_columns,
        declared=spec.columns,
        previous=_published_columns(ctx, state),
        policy=ctx.project.effective_schema_policy(spec.name),
        mode=spec.write.mode,
        full_refresh=ctx.full_refresh,
    )
    res.warnings.extend(result.warnings)
    if result.drift:
        res.drift = result.drift.to_dict()


def _published_columns(ctx: StepContext, state: StepState) -> dict[str, str] | None:
    """The table's columns in the engine's types (None: no table yet)."""
    if state.table is None:
        return None
    schema = state.table.schema
    tmp = f"__lg_schema_{state.name}"
    ctx.session.register_arrow(tmp, schema.empty_table())
    try:
        return ctx.session.columns(tmp)
    finally:
        ctx.session.unregister(tmp)
