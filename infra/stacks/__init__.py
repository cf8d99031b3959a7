"""Stacks, one per lifecycle; each only composes constructs from ``infra.components``."""
