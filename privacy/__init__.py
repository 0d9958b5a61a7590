"""Differential privacy: OpenDP releases and the privacy-budget ledger."""
