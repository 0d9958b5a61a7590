"""Python client for the mlgov service."""

from mlgov.client import ApiError, Client, node

__all__ = ["ApiError", "Client", "node"]
