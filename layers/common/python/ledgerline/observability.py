"""Logs, metrics and traces (powertools), created once per process.

Tracing needs aws-xray-sdk and costs ~0.3 s of cold start, so a Tracer exists only
where tracing is switched on (POWERTOOLS_TRACE_DISABLED unset in AWS).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from ledgerline.crypto.masking import install as install_log_masking

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "ledgerline"))
# Sensitive fields (account numbers, phones, ids, secrets, tokens) never reach the log.
install_log_masking(logger)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Ledgerline"))


@cache
def tracer() -> Any | None:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() == "true":
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()
