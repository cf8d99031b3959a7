"""Logs and metrics (powertools), created once per process.

Traces come from Lambda's active X-Ray tracing (set by the CDK app), not from a
powertools Tracer: that needs aws-xray-sdk and adds ~0.3 s to every cold start.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

from ledgerline.crypto.masking import install as install_log_masking

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "ledgerline"))
# Sensitive fields (account numbers, phones, ids, secrets, tokens) never reach the log.
install_log_masking(logger)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Ledgerline"))
