"""Alerts as a run-events listener: webhook (JSON POST), Slack incoming webhook, email.

An alert fires once per *incident*: a problem of a dataset (a failing check, a blocked gate,
a failed step, a breached freshness SLA) opens an incident in the state store
(:mod:`lockgate.state.ops`) and alerts; while it stays open the same problem alerts no
more, across runs and scheduler restarts; when it clears (the check passes, the step
publishes, the data is fresh again) one "resolved" message is sent. A target with
``remind_after`` gets a ``reminder`` while the problem is still seen that long after the last
alert (the shortest ``remind_after`` among the matching targets paces them; the claim is a
compare-and-set in the state store, so two schedulers never both remind). A problem that gets
worse while open — a freshness warning becoming an error — alerts once more (``escalated``).
Targets filter by event, ``datasets``, and the datasets' ``owners`` / ``tags``. Delivery is
retried; a failed delivery is logged (redacted) and kept in :attr:`Alerter.failures`, it
never fails the run. Secrets are redacted from every message; webhook URLs come from the environment
(``url_env``) and are masked wherever they would appear.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import smtplib
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from lockgate.project.ops_models import AlertEvent, AlertKind, AlertSpec
from lockgate.redact import redact, remember
from lockgate.runloop import events as ev
from lockgate.state.ops import (
    close_incident,
    escalate_incident,
    open_incident,
    remind_incident,
)

if TYPE_CHECKING:
    from lockgate.lineage.model import LineageGraph
    from lockgate.ops.freshness import Freshness
    from lockgate.project import Project
    from lockgate.state import StateStore

log = logging.getLogger(__name__)

#: sends one message to one target; raises on failure
Send = Callable[[AlertSpec, Mapping[str, object]], None]


@dataclass(frozen=True)
class Alert:
    """One message: a problem starts (``firing``), got worse (``escalated``: a freshness
    warning became an error), is still there (``reminder``) or clears (``resolved``)."""

    event: AlertEvent
    status: str  # firing / escalated / reminder / resolved
    project: str
    dataset: str
    problem: str
    summary: str
    run_id: str | None = None
    reminder: int = 0  # the how-manieth reminder (0: not one)

    def payload(self) -> dict[str, object]:
        # what to type next: the run's steps and checks, else the dataset's state
        look = f"lockgate runs {self.run_id}" if self.run_id else f"lockgate show {self.dataset}"
        return {
            "event": str(self.event),
            "status": self.status,
            "project": self.project,
            "dataset": self.dataset,
            "problem": self.problem,
            "summary": redact(self.summary),
            "run_id": self.run_id,
            "command": look,
            "reminder": self.reminder,
        }


def _url(spec: AlertSpec, env: Mapping[str, str]) -> str:
    url = spec.url if spec.url is not None else env.get(spec.url_env or "", "")
    if not url:
        raise RuntimeError(f"alert '{spec.name}': environment variable {spec.url_env} is not set")
    remember(url.split("://", 1)[-1])  # the token is in the path: mask the whole address
    return url


def deliver(spec: AlertSpec, payload: Mapping[str, object], env: Mapping[str, str]) -> None:
    """Send ``payload`` to one target (raises on failure)."""
    text = f"[{payload['status']}] {payload['project']}.{payload['dataset']}: {payload['summary']}"
    text += f" — look: `{payload['command']}`"
    if spec.type == AlertKind.EMAIL:
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = text[:120], spec.sender, ", ".join(spec.to)
        msg.set_content(json.dumps(payload, indent=2))
        with smtplib.SMTP(spec.smtp_host or "", spec.smtp_port, timeout=10) as smtp:
            if spec.password_env:
                smtp.login(spec.sender or "", env.get(spec.password_env, ""))
            smtp.send_message(msg)
        return
    body = {"text": text} if spec.type == AlertKind.SLACK else dict(payload)
    req = urllib.request.Request(
        _url(spec, env),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


@dataclass
class Alerter:
    """Routes run events (and freshness results) to alert targets, once per incident."""

    project: str
    state: StateStore
    targets: tuple[AlertSpec, ...]
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    attempts: int = 3
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    sent: list[tuple[str, Alert]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: the project's column lineage (schema drift alerts name what they affect downstream)
    lineage: Callable[[], LineageGraph | None] | None = None
    #: dataset -> (owner, tags): what ``owners:`` / ``tags:`` of a target match
    routes: Mapping[str, tuple[str | None, tuple[str, ...]]] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def __call__(self, e: ev.RunEvent) -> None:
        if isinstance(e, ev.CheckEvaluated):
            kind = (
                AlertEvent.ERROR_CHECK_FAILED
                if e.status == "fail"
                else AlertEvent.WARN_CHECK_FAILED
            )
            problem = f"check {e.check}"
            if e.status in ("fail", "warn"):
                rows = "" if e.failing_rows is None else f", {e.failing_rows} failing rows"
                why = f"{e.severity} check '{e.check}' failed (observed {e.observed}{rows})"
                self._open(kind, e.dataset, problem, why, e.run_id)
            else:
                self._resolve(kind, e.dataset, problem, f"check '{e.check}' passes", e.run_id)
        elif isinstance(e, ev.GateBlockedEvent):
            why = f"gate blocked the batch: {e.reason}"
            problem = "gate" if e.interval is None else f"gate@{e.interval}"
            self._open(AlertEvent.GATE_BLOCKED, e.dataset, problem, why, e.run_id)
        elif isinstance(e, ev.SchemaDrifted):
            self._send(ev_alert(AlertEvent.SCHEMA_DRIFT, "firing", self.project, e, self._drift(e)))
        elif isinstance(e, ev.StepFinished):
            self._step(e)

    def _drift(self, e: ev.SchemaDrifted) -> str:
        """The drift incident in words: the changes and the downstream columns and checks
        they reach (column lineage, when the alerter has the project's graph)."""
        from lockgate.lineage.drift import incident

        graph = None
        if self.lineage is not None:
            try:
                graph = self.lineage()
            except Exception as exc:  # lineage is evidence, never a reason to lose the alert
                log.warning("schema drift alert without lineage: %s", redact(str(exc)))
        inc = incident(graph, e.dataset, e.drift, run_id=e.run_id)
        if not inc.changes:
            return f"schema drift: {json.dumps(e.drift, default=str)}"
        return f"schema drift: {inc.summary()}"

    def _step(self, e: ev.StepFinished) -> None:
        if e.status == "failed":
            why = f"step failed: {e.result.error or e.result.reason}"
            self._open(AlertEvent.RUN_FAILED, e.dataset, "step", why, e.run_id)
        elif e.status == "success":
            self._resolve(AlertEvent.RUN_FAILED, e.dataset, "step", "step succeeds", e.run_id)
            self._resolve(AlertEvent.GATE_BLOCKED, e.dataset, "gate", "batch published", e.run_id)
            if not e.result.intervals:
                return
            # a partitioned step: the intervals it published that had an open incident
            from lockgate.state.ops import open_incidents

            opened = {p for d, p in open_incidents(self.state, self.project) if d == e.dataset}
            for i in e.result.intervals:
                problem = f"gate@{i.get('interval')}"
                if i.get("status") == "published" and problem in opened:
                    why = "interval published"
                    self._resolve(AlertEvent.GATE_BLOCKED, e.dataset, problem, why, e.run_id)

    def freshness(self, results: Iterable[Freshness]) -> None:
        """Open or resolve the freshness incident of each dataset with an SLA."""
        for f in results:
            if f.breached:
                age = "never published" if f.age_s is None else f"last publish {f.age_s:.0f}s ago"
                limit = f.error_after_s if str(f.level) == "error" else f.warn_after_s
                why = f"freshness {f.level}: {age} (limit {limit}s)"
                kind = AlertEvent.FRESHNESS_BREACHED
                self._open(kind, f.dataset, "freshness", why, None, level=str(f.level))
            else:
                self._resolve(AlertEvent.FRESHNESS_BREACHED, f.dataset, "freshness", "fresh", None)

    def stream_health(self, stream: str, kind: AlertEvent, breached: bool, why: str) -> None:
        """Open or resolve a stream's lag / DLQ-ratio incident (``stream:NAME``, as its runs
        are selected in ``lockgate runs``)."""
        problem = "lag" if kind == AlertEvent.STREAM_LAG else "dlq ratio"
        if breached:
            self._open(kind, f"stream:{stream}", problem, why, None)
        else:
            self._resolve(kind, f"stream:{stream}", problem, why, None)

    def _open(
        self,
        kind: AlertEvent,
        dataset: str,
        problem: str,
        why: str,
        run: str | None,
        *,
        level: str | None = None,
    ) -> None:
        now = self.clock()
        st, name = self.state, self.project
        if open_incident(st, name, dataset, problem, str(kind), run, now, level):
            self._send(Alert(kind, "firing", name, dataset, problem, why, run))
            return
        was = escalate_incident(st, name, dataset, problem, level) if level else None
        if was is not None:
            why = f"escalated from {was or 'open'} to {level}: {why}"
            self._send(Alert(kind, "escalated", name, dataset, problem, why, run))
            return
        every = [
            s.remind_after_s
            for s in self.targets
            if s.remind_after_s is not None and self._wants(s, kind, dataset)
        ]
        if not every:
            return
        n = remind_incident(self.state, self.project, dataset, problem, min(every), now)
        if n is not None:
            still = f"still open (reminder {n}): {why}"
            alert = Alert(kind, "reminder", self.project, dataset, problem, still, run, n)
            self._send(alert, reminders=True)

    def _resolve(
        self, kind: AlertEvent, dataset: str, problem: str, why: str, run: str | None
    ) -> None:
        if close_incident(self.state, self.project, dataset, problem):
            self._send(Alert(kind, "resolved", self.project, dataset, problem, why, run))

    def _wants(self, spec: AlertSpec, kind: AlertEvent, dataset: str) -> bool:
        """Whether target ``spec`` receives ``kind`` alerts of ``dataset`` (its routing)."""
        if kind not in spec.events or (spec.datasets and dataset not in spec.datasets):
            return False
        owner, tags = self.routes.get(dataset, (None, ()))
        if spec.owners and owner not in spec.owners:
            return False
        return not spec.tags or bool(set(spec.tags) & set(tags))

    def _send(self, alert: Alert, *, reminders: bool = False) -> None:
        payload = alert.payload()
        for spec in self.targets:
            if not self._wants(spec, alert.event, alert.dataset):
                continue
            if reminders and spec.remind_after_s is None:
                continue
            self._deliver(spec, alert, payload)

    def _deliver(self, spec: AlertSpec, alert: Alert, payload: Mapping[str, object]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                deliver(spec, payload, self.env)
            except Exception as e:
                msg = redact(f"alert '{spec.name}' attempt {attempt}/{self.attempts}: {e}")
                log.warning("%s", msg)
                if attempt == self.attempts:
                    self.failures.append(msg)
                    return
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            else:
                self.sent.append((spec.name, alert))
                return


def ev_alert(kind: AlertEvent, status: str, project: str, e: ev.SchemaDrifted, why: str) -> Alert:
    return Alert(kind, status, project, e.dataset, "schema", why, e.run_id)


@contextlib.contextmanager
def run_alerts(project: Project) -> Iterator[list[ev.Listener]]:
    """Listeners that alert ``alerts:`` targets during a one-off run (``lockgate run``,
    ``lockgate backfill``) — the same incidents as under ``lockgate serve``: a problem that is
    already open (alerted by the scheduler or an earlier run) does not alert again."""
    if not project.config.alerts:
        yield []
        return
    from lockgate.state import StateStore

    state = StateStore.open(project.state_url)
    try:
        cfg = project.config
        yield [Alerter(cfg.name, state, cfg.alerts, routes=routes(project))]
    finally:
        state.close()


def routes(project: Project) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """Each dataset's owner and tags (what alert targets' ``owners`` / ``tags`` match)."""
    return {n: (d.owner, tuple(d.tags)) for n, d in project.datasets.items()}
