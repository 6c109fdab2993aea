"""``python -m aiops.compute.job``: the process a Ray job runs.

It is a command-line entry point, so it reads its instructions from the environment Ray gives the job
(the function and the JSON payload) and prints the JSON result as the last line marked ``AIOPS_JOB_RESULT``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

FUNCTION_VAR = "AIOPS_JOB_FUNCTION"
PAYLOAD_VAR = "AIOPS_JOB_PAYLOAD"
RESULT_MARK = "AIOPS_JOB_RESULT "


def result_from_log(log: str) -> dict[str, Any] | None:
    """The job's result: the last line of its log marked ``AIOPS_JOB_RESULT`` (None when there is none)."""
    for line in reversed(log.splitlines()):
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    return None


def main() -> int:
    from aiops.compute.base import run_job

    function = os.environ.get(FUNCTION_VAR)
    if not function:
        print(f"{FUNCTION_VAR} is not set", file=sys.stderr)
        return 2
    result = run_job(function, json.loads(os.environ.get(PAYLOAD_VAR) or "{}"))
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
