"""The verification commands: `verify-decision`, `verify-report` and `verify-audit` check what the
service signed, offline, with a public key you trust (mlgov/verify.py, mlgov/audit.py);
`audit-checkpoint` has the service sign its audit chain's head, to keep for `verify-audit`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlgov.audit import chain_walk, checkpoint_problems
from mlgov.client import Client
from mlgov.commands import FAIL, PASS
from mlgov.verify import decision_problems, verify_audit_export, verify_report, verify_techfile

PUBLIC_KEY_HELP = "base64 key, or a file saved from /api/v1/gate/public-key"


def _verify(args, client: Client) -> int:
    document = json.loads(Path(args.file).read_text())
    key = _public_key(args, client)
    expect = {
        "workspace": args.workspace,
        "model": args.model,
        "version": args.version,
        "stage": args.stage,
        "artifact_sha256": args.sha256,
    }
    problems = decision_problems(document, key, expect)
    if _invalid(problems):
        return FAIL
    statement = document["statement"]
    print(
        f"valid: {statement['workspace']}/{statement['model']}@{statement['version']} -> "
        f"{statement['stage']}: {'passed' if statement['passed'] else 'failed'} "
        f"(sha256 {statement['artifact_sha256'][:12]}…, key {statement.get('key_id')})"
    )
    return PASS


def _invalid(problems: list[str]) -> bool:
    """Print each problem on stderr; True when there was any."""
    for problem in problems:
        print(f"INVALID: {problem}", file=sys.stderr)
    return bool(problems)


def _verify_report(args, client: Client) -> int:
    document = json.loads(Path(args.file).read_text())
    key = _public_key(args, client)
    problems = verify_report(document, key)
    if _invalid(problems):
        return FAIL
    report = document["report"]
    reviews = sum(len(r.get("reviews", [])) for r in report.get("promotion_requests", []))
    sections = f"{len(report['sections'])} sections, " if "sections" in report else ""
    print(
        f"valid: report of {report['model']}@{report['version']} ({sections}"
        f"{len(report['gate_decisions'])} gate decisions, {reviews} reviews, "
        f"{len(report['audit_events'])} audit events, key {report['key_id']})"
    )
    return PASS


def _verify_techfile(args, client: Client) -> int:
    document = json.loads(Path(args.file).read_text())
    problems = verify_techfile(document, _public_key(args, client))
    if _invalid(problems):
        return FAIL
    techfile = document["techfile"]
    missing = sum(len(s.get("missing", [])) for s in techfile["sections"])
    print(
        f"valid: technical file of {techfile['model']}@{techfile['version']} ({len(techfile['sections'])} "
        f"sections, {len(techfile['evidence'])} evidence documents, {missing} items missing, "
        f"key {techfile['key_id']})"
    )
    return PASS


def _verify_audit(args, client: Client) -> int:
    """Recompute the whole chain the service serves, then check it against each checkpoint kept."""
    checkpoints = [(name, json.loads(Path(name).read_text())) for name in args.checkpoint or []]
    watch = [c.get("statement", {}).get("seq") for _, c in checkpoints if isinstance(c, dict)]
    check, page = chain_walk(client.audit_chain(), watch=[s for s in watch if isinstance(s, int)])
    problems = list(check.problems)
    if checkpoints:
        key = _public_key(args, client)
        for name, checkpoint in checkpoints:
            found = checkpoint_problems(checkpoint, key, check, str(page.get("workspace_id")))
            problems += [f"{name}: {problem}" for problem in found]
    if _invalid(problems):
        return FAIL
    extends = "".join(f"; extends {name} (event {c['statement']['seq']})" for name, c in checkpoints)
    print(f"intact: {page.get('workspace')}, {check.events} events, head {check.last_hash[:12]}…{extends}")
    return PASS


def _verify_audit_export(args, client: Client) -> int:
    document = json.loads(Path(args.file).read_text())
    problems = verify_audit_export(document, _public_key(args, client))
    if _invalid(problems):
        return FAIL
    export = document["export"]
    events = export["events"]
    span = (
        f"events {events[0]['document']['seq']} to {events[-1]['document']['seq']}" if events else "no events"
    )
    print(
        f"valid: audit log of {export['workspace']} from {export['since']} to {export['until']} "
        f"({span}, key {export['key_id']})"
    )
    return PASS


def _audit_export(args, client: Client) -> int:
    document = client.audit_export(args.since, args.until)
    Path(args.output).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"{document['export']['count']} events from {args.since} to {args.until} saved to {args.output}")
    return PASS


def _audit_checkpoint(args, client: Client) -> int:
    checkpoint = client.audit_checkpoint()
    statement = checkpoint["statement"]
    Path(args.output).write_text(json.dumps(checkpoint, indent=2, sort_keys=True) + "\n")
    print(
        f"checkpoint of {statement['workspace']} at event {statement['seq']} "
        f"(hash {statement['hash'][:12]}…, signed {statement['time']}, key {statement['key_id']}) "
        f"saved to {args.output}"
    )
    return PASS


def _public_key(args, client: Client) -> str:
    if args.public_key:
        given = Path(args.public_key)
        return json.loads(given.read_text())["public_key"] if given.exists() else args.public_key
    return client.public_key()["public_key"]


def add_parsers(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser("verify-decision", help="verify a saved gate decision's signature")
    verify.add_argument("file")
    verify.add_argument("--public-key", help=PUBLIC_KEY_HELP)
    for option, what in (
        ("--workspace", "workspace slug"),
        ("--model", "model name"),
        ("--version", "model version"),
        ("--stage", "stage"),
        ("--sha256", "SHA-256 of the model file being deployed"),
    ):
        verify.add_argument(option, help=f"the decision must be for this {what}")
    verify.set_defaults(handler=_verify)
    offline = (
        (
            "verify-report",
            "verify a report bundle: its signature, each section's digest, each gate decision's "
            "signature and the audit events' hashes",
            _verify_report,
        ),
        (
            "verify-techfile",
            "verify a technical-file bundle: its signature and every cited evidence document's hash",
            _verify_techfile,
        ),
        (
            "verify-audit-export",
            "verify a saved audit-log export offline: its signature, every event's hash and link",
            _verify_audit_export,
        ),
    )
    for name, what, handler in offline:  # a saved file and the key to check it with
        parser = commands.add_parser(name, help=what)
        parser.add_argument("file")
        parser.add_argument("--public-key", help=PUBLIC_KEY_HELP)
        parser.set_defaults(handler=handler)
    audit = commands.add_parser(
        "verify-audit", help="recompute the workspace's audit chain and check it extends saved checkpoints"
    )
    audit.add_argument("--checkpoint", action="append", help="a saved checkpoint file (repeatable)")
    audit.add_argument("--public-key", help=PUBLIC_KEY_HELP)
    audit.set_defaults(handler=_verify_audit)
    export = commands.add_parser("audit-export", help="save the signed audit log of a period")
    export.add_argument("--since", required=True, help="the period's start (ISO 8601)")
    export.add_argument("--until", required=True, help="the period's end (ISO 8601)")
    export.add_argument("--output", required=True, help="the file to save the export to")
    export.set_defaults(handler=_audit_export)
    checkpoint = commands.add_parser("audit-checkpoint", help="have the service sign its audit chain's head")
    checkpoint.add_argument("--output", required=True, help="the file to save the signed checkpoint to")
    checkpoint.set_defaults(handler=_audit_checkpoint)
