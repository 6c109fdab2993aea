"""aiops: a self-healing ML-operations daemon.

Collects telemetry on a schedule, detects anomalies, drift and data-quality problems, opens incidents,
notifies people and runs guarded remediations whose effect it verifies before calling anything healed.
"""

__version__ = "0.1.0"
