"""The dispute evidence bucket: documents the parties of a disputed escrow upload straight
from their devices with a presigned POST (``ledgerline.aws.evidence``).

Private (block public access, bucket owner owns every object, TLS only), SSE-KMS with a key
of its own that only the functions holding ``s3:evidence-write`` / ``s3:evidence-read`` (and
tagged operators, for an investigation) may use, and only through S3; versioned, so a
re-upload within the form's lifetime never destroys the version that was confirmed; server
access logs. Retained with the stack, like every holder of data.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants as c
from infra.components.audit import access_log_bucket
from infra.components.keys import ENVELOPE, KeyPolicy, symmetric_key, via_service

ACCESS_LOG_DAYS = 400  # as long as the audit bucket's access logs


class EvidenceBucket(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: c.Names) -> None:
        super().__init__(scope, construct_id)
        self.key = self._key(names)
        self.access_logs = access_log_bucket(self, ACCESS_LOG_DAYS)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=names.evidence_bucket(),
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="evidence-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    abort_incomplete_multipart_upload_after=c.EVIDENCE_UPLOADS_ABORTED,
                    noncurrent_version_expiration=c.EVIDENCE_NONCURRENT_EXPIRY,
                )
            ],
            # Browsers POST the form from the app's origin; the signed policy, not CORS, is
            # what authorizes an upload.
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.POST], allowed_origins=["*"], max_age=3000)],
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

    def _key(self, names: c.Names) -> kms.Key:
        s3_only = via_service("s3")
        policy = (
            KeyPolicy(names)
            .for_grant("EvidenceUploads", ENVELOPE, "s3:evidence-write", via=s3_only)
            .for_grant("EvidenceConfirmations", ["kms:Decrypt"], "s3:evidence-read", via=s3_only)
            .for_operators("OperatorsReadEvidence", ["kms:Decrypt"], via=s3_only)
        )
        return symmetric_key(
            self,
            "Key",
            alias=names.key_alias(c.EVIDENCE_BUCKET_KEY),
            description="Dispute evidence documents",
            policy=policy.document,
        )
