"""Request bodies of the webhook endpoint routes (validated by the Endpoint, 422 on mismatch)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebhookEndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    events: list[str] = Field(min_length=1, max_length=50)
