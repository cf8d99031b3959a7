"""The audit trail outside the database: the canonical record and its hash chain
(``canonical``), the shipper that chains committed rows and puts them in the Object Lock
bucket with a signed checkpoint (``shipper``), and ``audit verify`` (``verify``).
docs/audit.md describes the formats."""
