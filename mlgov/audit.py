"""Checking a workspace's audit chain outside the service, against signed checkpoints kept earlier.

The service serves its chain (`GET /api/v1/audit/chain`) with the exact document each hash covers:
hash = SHA-256(previous hash + canonical JSON of the document), starting from 64 zeros. This module
recomputes every link without trusting the service, and checks each checkpoint file (a statement of
the head's seq and hash, signed with the service's Ed25519 key) against the chain: a chain that no
longer passes through a checkpoint's hash was rewritten after the checkpoint was signed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlgov.canonical_json import canonical_bytes
from mlgov.verify import verify_decision

GENESIS = "0" * 64
CHECKPOINT_TYPE = "mlgov.audit-checkpoint/v1"


@dataclass
class ChainCheck:
    """What a walk of the chain found: the events seen, the problems, and the hash at each asked seq."""

    events: int = 0
    last_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)
    hashes_at: dict[int, str] = field(default_factory=dict)


def chain_walk(
    pages: Iterable[dict[str, Any]], *, watch: Iterable[int] = ()
) -> tuple[ChainCheck, dict[str, Any]]:
    """Walk the pages of `GET /audit/chain` from the first event; returns what was found and the last
    page (its `workspace_id` and `head`). Stops at the first broken link."""
    wanted = set(watch)
    check = ChainCheck()
    last_page: dict[str, Any] = {}
    expected = 1
    for page in pages:
        last_page = page
        workspace_id = page.get("workspace_id")
        for event in page.get("events", []):
            document = event.get("document") or {}
            seq = event.get("seq")
            if seq != expected or document.get("seq") != seq:
                check.problems.append(f"event {expected} is missing (the next one is {seq})")
                return check, last_page
            if document.get("workspace") != workspace_id:
                check.problems.append(f"event {seq} belongs to another workspace")
                return check, last_page
            if event.get("prev_hash") != check.last_hash:
                check.problems.append(f"event {seq}: its previous hash does not match event {seq - 1}")
                return check, last_page
            digest = hashlib.sha256(check.last_hash.encode() + canonical_bytes(document)).hexdigest()
            if digest != event.get("hash"):
                check.problems.append(f"event {seq}: its content does not match its hash")
                return check, last_page
            if seq in wanted:
                check.hashes_at[seq] = digest
            check.last_hash, check.events, expected = digest, seq, expected + 1
    head = last_page.get("head") or {}
    if check.events != head.get("seq"):
        check.problems.append(f"the chain ends at event {check.events} but the head says {head.get('seq')}")
    elif check.last_hash != head.get("hash"):
        check.problems.append("the last event's hash is not the head's")
    return check, last_page


def checkpoint_problems(
    checkpoint: dict[str, Any], public_key_b64: str, check: ChainCheck, workspace_id: str
) -> list[str]:
    """Why a checkpoint file does not hold for the walked chain (empty when it does)."""
    statement = checkpoint.get("statement")
    if not isinstance(statement, dict) or statement.get("type") != CHECKPOINT_TYPE:
        return ["the file is not an audit checkpoint"]
    if not verify_decision(checkpoint, public_key_b64):
        return ["the checkpoint's signature does not match its statement and this key"]
    if statement.get("workspace_id") != workspace_id:
        return [f"the checkpoint is for workspace {statement.get('workspace')!r}, not this one"]
    seq = statement.get("seq")
    if not isinstance(seq, int) or seq < 1:
        return ["the checkpoint names no event"]
    if seq > check.events:
        if check.problems:
            return [f"event {seq} could not be checked: the chain is broken before it"]
        return [
            f"the chain has {check.events} events but the checkpoint certified {seq}: events were removed"
        ]
    if check.hashes_at.get(seq) != statement.get("hash"):
        return [f"event {seq} has another hash than the checkpoint certified: the chain was rewritten"]
    return []
