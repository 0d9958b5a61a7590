"""Python client for the mlgov service."""

from mlgov.client import ApiError, Client, JobFailed, node

__all__ = ["ApiError", "Client", "JobFailed", "node"]
