"""Escrow routes (issue 17): one module per route; the money runs in escrow_transition."""
