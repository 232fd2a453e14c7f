"""Deterministic crash points, for crash-safety tests (no timing involved).

With ``LOCKGATE_CRASH_AT=N`` in the environment the process kills itself (SIGKILL: no
cleanup, no ``finally``) at the N-th crash point it reaches; ``LOCKGATE_CRASH_LOG=path``
appends ``"<n> <name>"`` for every point reached. Crash points sit where a real crash is most
harmful: right before and right after each Delta commit, and around what the run loop
records in the state store. Without the variable a crash point is one dict lookup.

``LOCKGATE_STOP_AT=<text>`` instead *stops* the process (SIGSTOP, once) at the first point
whose name contains ``<text>`` (the ``LOCKGATE_STOP_SKIP``-th + 1 such point): a paused
consumer (GC, swap, a suspended VM) for the lease-fencing tests, resumed with SIGCONT.
"""

from __future__ import annotations

import os
import signal
import threading

_reached = 0
_stops = 0
_lock = threading.Lock()  # steps run in threads: count, log and die as one


def crashpoint(name: str) -> None:
    """Count this point; die here if it is the one ``LOCKGATE_CRASH_AT`` names."""
    at = os.environ.get("LOCKGATE_CRASH_AT")
    if not at:
        if "LOCKGATE_STOP_AT" in os.environ:
            _stop(name)
        return
    global _reached
    with _lock:
        _reached += 1
        log = os.environ.get("LOCKGATE_CRASH_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{_reached} {name}\n")
        if _reached == int(at):
            os.kill(os.getpid(), signal.SIGKILL)


def _stop(name: str) -> None:
    global _stops
    if os.environ["LOCKGATE_STOP_AT"] not in name:
        return
    with _lock:
        _stops += 1
        if _stops != int(os.environ.get("LOCKGATE_STOP_SKIP", "0")) + 1:
            return
        log = os.environ.get("LOCKGATE_CRASH_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"stopped at {name}\n")
    os.kill(os.getpid(), signal.SIGSTOP)
