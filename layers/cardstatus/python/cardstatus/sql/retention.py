"""SQL of card retention (0020_card_retention.sql): one batch, as a SECURITY DEFINER function."""

from __future__ import annotations

PURGE = "SELECT cards, events, copies FROM retention_purge(%(cutoff)s, %(batch)s)"
