"""What the escrow routes send to their money operation (``money_op`` -> ``escrow_transition``)."""

from __future__ import annotations

from typing import Any

from ledgerline.config import settings
from ledgerline.ids import object_id


def transition_args(escrow_id: str, **fields: Any) -> dict[str, Any]:
    """The escrow the path names (not a UUID: 404, as a missing one) and the request's
    fields, with the dispute window of this deployment: the transition checks it for a
    dispute, and every answer's allowed_transitions leaves DISPUTED out once it closed."""
    return {
        "escrow_id": str(object_id(escrow_id, "escrow")),
        "dispute_window_days": settings().dispute_window_days,
        **fields,
    }
