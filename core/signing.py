"""Ed25519 signatures for gate decisions, report bundles and audit checkpoints.

The private key comes from GATE_SIGNING_KEY (base64 of the 32-byte raw key, from the environment or
a secrets manager) or, for local use, from a file generated once under ./var with mode 0600. The
public key is served by the API; anyone holding it verifies a decision offline with
`verify(statement, signature, public_key)` or `mlgov verify-decision`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from core.canonical_json import canonical_bytes


def _load_or_create(path: Path) -> bytes:
    if path.exists():
        return base64.b64decode(path.read_text().strip())
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return base64.b64decode(path.read_text().strip())
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(raw).decode())
    return raw


@functools.cache
def private_key() -> Ed25519PrivateKey:
    configured = settings.GATE_SIGNING_KEY
    raw = (
        base64.b64decode(configured) if configured else _load_or_create(Path(settings.GATE_SIGNING_KEY_FILE))
    )
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_bytes(key: Ed25519PublicKey | None = None) -> bytes:
    key = key or private_key().public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(raw_public: bytes | None = None) -> str:
    return hashlib.sha256(raw_public or public_key_bytes()).hexdigest()[:16]


def public_key_document() -> dict[str, str]:
    raw = public_key_bytes()
    pem = (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return {
        "algorithm": "Ed25519",
        "key_id": key_id(raw),
        "public_key": base64.b64encode(raw).decode(),
        "public_key_pem": pem.decode(),
    }


def sign(statement: dict[str, Any]) -> str:
    return base64.b64encode(private_key().sign(canonical_bytes(statement))).decode()


def verify(statement: dict[str, Any], signature: str, public_key_b64: str) -> bool:
    """True when `signature` is the key's signature of the statement's canonical JSON."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        key.verify(base64.b64decode(signature), canonical_bytes(statement))
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False
