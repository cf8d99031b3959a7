"""The only package that calls boto3: queues, bucket, KMS, secrets."""
