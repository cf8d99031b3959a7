"""SQL for auditors: the same SQL text on Athena (in AWS) and on DuckDB (on a laptop).

The table is the Glue table of the CDK app, ``<prefix>_audit.audit_events`` over the
audit bucket's ``audit/dt=YYYY-MM-DD/`` objects. In AWS, ``ledgerline.aws.athena`` runs a
query in the audit workgroup; locally, ``local`` copies the same objects into a cache
folder and ``duck`` answers from them under the same database and table name.
``named`` holds the ready-made queries (``queries/*.sql``), ``output`` prints results.
"""
