"""schemathesis hooks for scripts/fuzz_api.sh (loaded through SCHEMATHESIS_HOOKS).

The fuzzer may revoke any token it finds, except the one it is authenticated with: following the
link from GET /api/v1/tokens to DELETE /api/v1/tokens/{token_id} would otherwise revoke it, and every
request after that would be a 401 that tests nothing. That one call goes to an id that names no token.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import schemathesis

OWN_TOKEN_ID = os.environ["FUZZ_TOKEN_ID"]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if (
        case.operation.method.upper() == "DELETE"
        and case.operation.path == "/api/v1/tokens/{token_id}"
        and str((case.path_parameters or {}).get("token_id")) == OWN_TOKEN_ID
    ):
        case.path_parameters["token_id"] = str(uuid.uuid4())
