"""The `mlgov` command. Reads MLGOV_URL and MLGOV_TOKEN.

mlgov gate --model income --version 3 --stage production     # exit 0 pass, 1 fail, 2 error
mlgov verify-decision decision.json [--public-key KEY] [--model income --version 3 --stage production]
                                                               # exit 0 valid, 1 invalid, 2 error
mlgov datasheet push card.md [--kind model_card --name income --version 3]
mlgov register --model income --version 3 --file model.skops [--dataset adult@v2 ... --run R --job J]
mlgov explain --model income --version 3 --dataset adult-holdout@v2 [--rows 1000 --values shap.npz]
mlgov fairness --model income --version 3 --dataset adult-holdout@v2 --target income_over_50k --sensitive sex
mlgov verify-audit [--checkpoint cp.json ...] [--public-key KEY]   # exit 0 intact, 1 not, 2 error
mlgov audit-checkpoint --output cp.json   # have the service sign its audit chain's head; keep the file
mlgov jobs [--state running]          # the latest jobs
mlgov job JOB_ID [--wait | --cancel]   # exit 0 succeeded (or still running), 1 failed or cancelled, 2 error
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
from pathlib import Path

from mlgov.client import ApiError, Client
from mlgov.commands import ERROR, FAIL, PASS, jobs, verification


def _gate(args, client: Client) -> int:
    decision = client.gate(args.model, args.version, args.stage)
    statement = decision["statement"]
    for rule in statement["rules"]:
        mark = {True: "PASS", False: "FAIL", None: "N/A "}[rule["passed"]]
        print(f"{mark}  {rule['policy']}/{rule['rule']} ({rule['type']}): {rule['reason']}")
    verdict = "passes" if statement["passed"] else "fails"
    print(
        f"{args.model}@{args.version} {verdict} the gate to {args.stage} (decision {statement['decision']})"
    )
    if args.output:
        Path(args.output).write_text(json.dumps(decision, indent=2, sort_keys=True))
    return PASS if statement["passed"] else FAIL


def _datasheet(args, client: Client) -> int:
    result = client.push_datasheet(args.file, kind=args.kind, name=args.name, version=args.version)
    print(
        f"{result['kind']} of {result['subject']}: revision {result['revision']}, "
        f"{result['completeness']['overall']:.0%} complete"
    )
    return PASS


def _register(args, client: Client) -> int:
    artifact = client.upload_artifact(args.file, media_type="application/x-skops")
    details = {}
    if args.dataset:
        details["datasets"] = args.dataset
    if args.job and not args.run:
        raise SystemExit("--job names the job of a run: give --run too")
    if args.run:
        details["run"] = {"key": args.run, **({"job": args.job} if args.job else {})}
    if args.commit:
        details["commit"] = {"key": args.commit}
    if args.environment:
        details["environment"] = {"key": args.environment}
    if args.metric:
        details["metrics"] = dict(args.metric)
    version = client.register(args.model, args.version, artifact["id"], **details)
    print(f"registered {version['model']}@{version['version']} (node {version['node']})")
    return PASS


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mlgov", description="mlgov command line (MLGOV_URL, MLGOV_TOKEN)")
    top.add_argument("--url", help="service URL (default: MLGOV_URL)")
    top.add_argument("--token", help="API token (default: MLGOV_TOKEN)")
    commands = top.add_subparsers(dest="command", required=True)
    gate = commands.add_parser("gate", help="evaluate the promotion gate; exit 0 pass, 1 fail, 2 error")
    gate.add_argument("--model", required=True)
    gate.add_argument("--version", required=True)
    gate.add_argument("--stage", required=True, choices=["staging", "production", "archived"])
    gate.add_argument("--output", help="save the signed decision to this file")
    gate.set_defaults(handler=_gate)
    verification.add_parsers(commands)
    sheet = commands.add_parser("datasheet", help="datasheets")
    sheet_commands = sheet.add_subparsers(dest="action", required=True)
    push = sheet_commands.add_parser(
        "push", help="push a model card, Annex IV sections or a datasheet (YAML, JSON, Markdown)"
    )
    push.add_argument("file")
    push.add_argument("--kind", choices=["model_card", "annex_iv", "datasheet"])
    push.add_argument("--name")
    push.add_argument("--version")
    push.set_defaults(handler=_datasheet)
    register = commands.add_parser("register", help="upload a skops model and register a version")
    register.add_argument("--model", required=True)
    register.add_argument("--version", required=True)
    register.add_argument("--file", required=True)
    register.add_argument("--dataset", action="append", help="a training dataset version key (repeatable)")
    register.add_argument("--run", help="the training run's key")
    register.add_argument("--job", help="the job (pipeline) the run is an instance of")
    register.add_argument("--commit")
    register.add_argument("--environment")
    register.add_argument("--metric", action="append", type=_metric, help="name=value (repeatable)")
    register.set_defaults(handler=_register)
    jobs.add_parsers(commands)
    return top


def _metric(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not (sep and name):
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a metric as name=number, e.g. accuracy=0.86"
        ) from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    client = Client(args.url, args.token)
    try:
        return args.handler(args, client)
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ERROR


if __name__ == "__main__":
    sys.exit(main())
