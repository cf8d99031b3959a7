"""Ledgerline's AWS CDK app: stacks split by lifecycle, built from the route and job tables.

``python -m infra.synth`` writes ``cdk.out`` and prints timings; ``cdk deploy`` runs
``python -m infra.app`` (see ``cdk.json``). Nothing here looks up an AWS account.
"""

import os

# jsii prints a banner on every run under Node 20 (end of life); the value names the
# one version it silences, so a newer Node still gets its own warnings.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
