"""Anomaly detection over metric histories (robust baseline, seasonality, drift)."""

from __future__ import annotations

from lockgate.anomaly.detect import Settings, Verdict, detect, zscore

__all__ = ["Settings", "Verdict", "detect", "zscore"]
