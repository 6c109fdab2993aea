"""Jobs as Kubernetes Jobs, for teams whose compute is a cluster: rendered here, applied with kubectl.

The Job's name is derived from the job's key, and ``kubectl apply`` of the same manifest is a no-op, so a
restarted daemon that submits again finds the Job it created before. As with Ray, the command is fixed
(``PYTHON -m aiops.compute.job``) and the function and payload are environment variables of the
container; the result is the last ``AIOPS_JOB_RESULT`` line of the pod's log. kubectl runs as an argument
list, never through a shell, with the manifest on its standard input.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping
from typing import Any

from aiops.compute.base import ComputeExecutor, ExecutorParams, JobSpec, JobState, JobStatus
from aiops.compute.job import FUNCTION_VAR, PAYLOAD_VAR, result_from_log
from aiops.errors import RemediationError

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def job_name(key: str) -> str:
    """A DNS-1123 label (<= 63 characters) that is stable for a key and distinct between keys."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    stem = _NOT_DNS.sub("-", key.lower()).strip("-")[:40].strip("-")
    return f"aiops-{stem}-{digest}" if stem else f"aiops-{digest}"


def job_manifest(spec: JobSpec, params: ExecutorParams) -> dict[str, Any]:
    """The batch/v1 Job for one job: no retries by Kubernetes (the ladder decides), hardened container."""
    name = job_name(spec.key)
    labels = {"app.kubernetes.io/managed-by": "aiops", "app.kubernetes.io/component": "job"}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "job",
                "image": params.image,
                "command": [params.python, "-m", "aiops.compute.job"],
                "env": [
                    {"name": FUNCTION_VAR, "value": spec.function},
                    {"name": PAYLOAD_VAR, "value": json.dumps(dict(spec.payload))},
                ],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
    if params.service_account:
        pod["serviceAccountName"] = params.service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": params.namespace, "labels": labels,
                     "annotations": {"aiops.dev/job-key": spec.key}},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


class KubernetesExecutor(ComputeExecutor):
    kind = "kubernetes"

    def _kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [*self.params.kubectl, *args, "--namespace", self.params.namespace]
        try:
            return subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=self.params.connect_timeout + 20
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RemediationError(f"kubectl: {exc}", recoverable=True) from exc

    def submit(self, spec: JobSpec) -> dict[str, Any]:
        manifest = job_manifest(spec, self.params)
        out = self._kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
        if out.returncode != 0:
            raise RemediationError(f"kubectl apply: {out.stderr.strip()[:300]}", recoverable=True)
        return {"executor": self.kind, "namespace": self.params.namespace, "job": manifest["metadata"]["name"]}

    def poll(self, handle: Mapping[str, Any], spec: JobSpec) -> JobStatus:
        name = str(handle["job"])
        out = self._kubectl("get", "job", name, "-o", "json")
        if out.returncode != 0:
            if "NotFound" in out.stderr:
                return JobStatus(JobState.LOST, error=f"no Job {name}")
            raise RemediationError(f"kubectl get job: {out.stderr.strip()[:300]}", recoverable=True)
        status = json.loads(out.stdout).get("status", {})
        if status.get("succeeded"):
            logs = self._kubectl("logs", f"job/{name}")
            result = result_from_log(logs.stdout)
            if result is None:
                return JobStatus(JobState.FAILED, error=f"Job {name} succeeded but printed no result")
            return JobStatus(JobState.SUCCEEDED, result=result)
        if status.get("failed"):
            tail = " | ".join(self._kubectl("logs", f"job/{name}").stdout.strip().splitlines()[-3:])
            return JobStatus(JobState.FAILED, error=f"Job {name} failed: {tail}")
        return JobStatus(JobState.RUNNING)
