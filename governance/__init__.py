"""Registry stages, datasheets, policies, gates, promotion requests and approvals."""
