"""Optional verification probes: a PromQL expression that must return nothing, or a command that must exit 0.

Why in addition to (not instead of) the check's own healthy evaluations: the detector tells whether the
symptom is gone; a probe tells whether the thing the action was meant to fix is fixed (the error-rate
alert expression is quiet, the model endpoint answers a canary). An action heals only when both agree, so
"ran without error" is never mistaken for "healed".

Ticks that bring no fresh data prove nothing either way; ``verify.quiet`` says what they count as, and the
message when a window ends without data says so, instead of a bare "not healed".

Probes are slow I/O (an HTTP query, a subprocess), so the engine calls them outside every lock and
transaction; each is bounded by ``probe_timeout``.
"""

from __future__ import annotations

import subprocess

import requests

from aiops.config.models import QuietVerify, VerifyConfig
from aiops.durations import format_duration
from aiops.redact import redact_url
from aiops.store.records import Incident


def has_probes(cfg: VerifyConfig) -> bool:
    """Whether verification must ask a probe (so the engine runs it outside its locks first)."""
    return bool((cfg.promql and cfg.prometheus_url) or cfg.command)


def probe_failure(cfg: VerifyConfig) -> str | None:
    """None when every configured probe passes (or none is configured), else why not, in one line."""
    if cfg.promql and cfg.prometheus_url:
        url = cfg.prometheus_url.rstrip("/") + "/api/v1/query"
        try:
            resp = requests.get(url, params={"query": cfg.promql}, timeout=cfg.probe_timeout)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            return f"PromQL probe: {redact_url(cfg.prometheus_url)} unusable ({exc.__class__.__name__})"
        if resp.status_code != 200 or body.get("status") != "success":
            return f"PromQL probe: query failed ({resp.status_code}: {str(body.get('error', ''))[:120]})"
        result = body.get("data", {}).get("result") or []
        if result:
            return f"PromQL probe: {cfg.promql!r} still returns {len(result)} series"
    if cfg.command:
        try:
            done = subprocess.run(cfg.command, capture_output=True, timeout=cfg.probe_timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"verify command: {exc.__class__.__name__}"
        if done.returncode != 0:
            return f"verify command exited {done.returncode}"
    return None


def quiet_verdict(cfg: VerifyConfig, incident: Incident, now: float) -> QuietVerify | None:
    """What a tick without fresh data means for an incident under verification: None while settling or when
    the check waits for data (``quiet: wait``), else ``HEALTHY`` or ``UNHEALTHY`` as configured."""
    if cfg.quiet is QuietVerify.WAIT or now < (incident.verify_started_at or now) + cfg.settle:
        return None
    return cfg.quiet


def saw_fresh_data(cfg: VerifyConfig, incident: Incident) -> bool:
    """Whether any evaluation of fresh data happened after settling: a healthy tick counted, or the finding
    seen again (both need new data)."""
    settled = (incident.verify_started_at or 0.0) + cfg.settle
    return incident.healthy_ticks > 0 or incident.last_seen_at >= settled


def not_healed_reason(cfg: VerifyConfig, incident: Incident) -> str:
    """Why verification failed when its window ended, in words an on-call engineer can act on."""
    window = format_duration(cfg.window)
    if saw_fresh_data(cfg, incident):
        return f"not healed within {window} of the action"
    return (
        f"no fresh data arrived within {window} after the action (settle {format_duration(cfg.settle)}): no data "
        "is not health, so the fix is unverified; set verify.quiet or a verify probe to decide otherwise"
    )


QUIET_UNHEALTHY_REASON = "no fresh data after the action and verify.quiet is unhealthy: not healed"
QUIET_HEALTHY_REASON = "verified: no fresh data after the action, counted as healthy (verify.quiet: healthy)"
