"""Request bodies of the reconciliation admin routes (validated by the Endpoint, 422)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRequestBody(_Body):
    provider: str = Field(max_length=40)
    date: str = Field(max_length=10)


class DiscrepancyUpdateBody(_Body):
    status: Literal["open", "explained", "resolved"]
    transaction_id: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=1000)
