"""The client's canonical JSON (mlgov/canonical_json.py) is the service's (core/canonical_json.py)
byte for byte: what the service signs or hashes, the client checks over the same bytes. The client
keeps its own copy because it must not import the service."""

from __future__ import annotations

import base64
import math

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import canonical_json as service
from mlgov import canonical_json as client
from mlgov.verify import verify_decision

VALUES = [
    {},
    {"b": 1, "a": [True, None, 0.1, -2], "é": "naïve ☃"},
    {"nested": {"z": {"y": [1.5e300, 1e-7, 0]}, "a": ""}, "unicode\u2028": "line\u2029sep"},
    [{"seq": 3, "workspace": "acme", "payload": {"epsilon": 0.25}}],
    'text with "quotes" and \\ backslashes',
    12345678901234567890,
]


@pytest.mark.parametrize("value", VALUES)
def test_the_client_and_the_service_write_the_same_bytes(value):
    assert client.canonical_bytes(value) == service.canonical_bytes(value)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_neither_writes_nan_or_infinity(number):
    with pytest.raises(ValueError, match="not JSON compliant"):
        service.canonical_bytes({"value": number})
    with pytest.raises(ValueError, match="not JSON compliant"):
        client.canonical_bytes({"value": number})


def test_a_decision_holding_nan_does_not_verify():
    """The service never signs NaN, so a statement with one was not signed by it, whatever the key."""
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    statement = {"decision": "d-1", "passed": True, "score": 0.5}
    signature = base64.b64encode(key.sign(service.canonical_bytes(statement))).decode()
    assert verify_decision({"statement": statement, "signature": signature}, public)
    tampered = {**statement, "score": math.nan}
    assert not verify_decision({"statement": tampered, "signature": signature}, public)
