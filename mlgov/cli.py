"""The `mlgov` command. Reads MLGOV_URL and MLGOV_TOKEN.

mlgov gate --model income --version 3 --stage production     # exit 0 pass, 1 fail, 2 error
mlgov verify-decision decision.json [--public-key KEY] [--model income --version 3 --stage production]
                                                               # exit 0 valid, 1 invalid, 2 error
mlgov datasheet push card.md [--kind model_card --name income --version 3]
mlgov register --model income --version 3 --file model.skops [--dataset adult@v2 ...]
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

from mlgov.audit import chain_walk, checkpoint_problems
from mlgov.client import FINISHED, ApiError, Client, JobFailed, decision_problems, verify_report

PASS, FAIL, ERROR = 0, 1, 2
INTERRUPTED = 130  # Ctrl-C, as shells report it


def _gate(args, client: Client) -> int:
    decision = client.gate(args.model, args.version, args.stage)
    statement = decision["statement"]
    for rule in statement["rules"]:
        mark = "PASS" if rule["passed"] else "FAIL"
        print(f"{mark}  {rule['policy']}/{rule['rule']} ({rule['type']}): {rule['reason']}")
    verdict = "passes" if statement["passed"] else "fails"
    print(
        f"{args.model}@{args.version} {verdict} the gate to {args.stage} (decision {statement['decision']})"
    )
    if args.output:
        Path(args.output).write_text(json.dumps(decision, indent=2, sort_keys=True))
    return PASS if statement["passed"] else FAIL


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
    if problems:
        for problem in problems:
            print(f"INVALID: {problem}", file=sys.stderr)
        return FAIL
    statement = document["statement"]
    print(
        f"valid: {statement['workspace']}/{statement['model']}@{statement['version']} -> "
        f"{statement['stage']}: {'passed' if statement['passed'] else 'failed'} "
        f"(sha256 {statement['artifact_sha256'][:12]}…, key {statement.get('key_id')})"
    )
    return PASS


def _verify_report(args, client: Client) -> int:
    document = json.loads(Path(args.file).read_text())
    key = _public_key(args, client)
    problems = verify_report(document, key)
    if problems:
        for problem in problems:
            print(f"INVALID: {problem}", file=sys.stderr)
        return FAIL
    report = document["report"]
    print(
        f"valid: report of {report['model']}@{report['version']} "
        f"({len(report['audit_events'])} audit events, {len(report['gate_decisions'])} gate decisions, "
        f"key {report['key_id']})"
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
    if problems:
        for problem in problems:
            print(f"INVALID: {problem}", file=sys.stderr)
        return FAIL
    extends = "".join(f"; extends {name} (event {c['statement']['seq']})" for name, c in checkpoints)
    print(f"intact: {page.get('workspace')}, {check.events} events, head {check.last_hash[:12]}…{extends}")
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
    if args.run:
        details["run"] = {"key": args.run}
    if args.commit:
        details["commit"] = {"key": args.commit}
    if args.environment:
        details["environment"] = {"key": args.environment}
    if args.metric:
        details["metrics"] = dict(args.metric)
    version = client.register(args.model, args.version, artifact["id"], **details)
    print(f"registered {version['model']}@{version['version']} (node {version['node']})")
    return PASS


# --- explanation and fairness jobs ---------------------------------------------------------------------
def _explain(args, client: Client) -> int:
    options = _options(
        args,
        features="features",
        target="target",
        backend="backend",
        rows="rows",
        background_rows="background_rows",
        chunk_rows="chunk_rows",
        output="class_index",
        seed="seed",
    )
    job = client.explain(
        args.model, args.version, args.dataset, idempotency_key=args.idempotency_key, **options
    )
    return _follow(args, client, job)


def _fairness(args, client: Client) -> int:
    options = _options(
        args,
        features="features",
        positive_label="positive_label",
        resamples="resamples",
        confidence_level="confidence_level",
        min_group_size="min_group_size",
        seed="seed",
    )
    job = client.assess_fairness(
        args.model,
        args.version,
        args.dataset,
        target=args.target,
        sensitive_features=args.sensitive,
        idempotency_key=args.idempotency_key,
        **options,
    )
    return _follow(args, client, job)


def _job(args, client: Client) -> int:
    if args.cancel:
        job = client.cancel(args.job_id)
        chunks = f" after {job['chunks_done']}/{job['chunks_total']} chunks" if job["chunks_total"] else ""
        print(f"{_what(job)}: cancelled{chunks}")
        return PASS
    job = client.job(args.job_id)
    if not args.wait or job["state"] in FINISHED:
        return _finished(args, client, job)
    return _follow(args, client, job)


def _jobs(args, client: Client) -> int:
    found = client.jobs(kind=args.kind, state=args.state, limit=args.limit)
    if not found:
        print("no job matches")
        return PASS
    table = [["id", "asked", "kind", "model", "data", "state", "backend"]]
    for job in found:
        state = job["state"]
        if state == "running" and job["chunks_total"]:
            state += f" {job['chunks_done']}/{job['chunks_total']}"
        asked = job["created_at"][:16].replace("T", " ")
        table.append(
            [job["id"], asked, job["kind"], job["model"]["key"], job["dataset"]["key"], state, job["backend"]]
        )
    _print_table(table, numbers=False, indent="")
    return PASS


def _options(args, **fields: str) -> dict:
    """The API's job options from the command's arguments, leaving out those not given (the service's
    defaults apply)."""
    return {field: getattr(args, name) for field, name in fields.items() if getattr(args, name) is not None}


def _positive_label(text: str):
    """A label as the data holds it: JSON where it parses (1, true, 0.5), else the text (">50K")."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (str, int, float, bool)) else text


def _follow(args, client: Client, job: dict) -> int:
    job_id = job["id"]
    shown: tuple = ()  # the last progress printed

    def progress(current: dict) -> None:
        nonlocal shown
        step = (current["state"], current.get("chunks_done"), current.get("chunks_total"))
        if current["state"] == "running" and step != shown:
            chunks = f", {step[1]}/{step[2]} chunks" if step[2] else ""
            print(f"  running{chunks}", file=sys.stderr)
        shown = step

    try:
        print(f"job {job_id}: {_what(job)}, {job['state']}", file=sys.stderr)
        if getattr(args, "no_wait", False):
            print(job_id)
            return PASS
        job = client.wait(job, timeout=args.timeout, progress=progress)
    except JobFailed as failed:
        job = failed.job
    except TimeoutError as error:
        print(f"error: {error}; follow it with `mlgov job {job_id} --wait`", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print(
            f"\nstopped waiting; the job goes on: `mlgov job {job_id} --wait` follows it, "
            f"`mlgov job {job_id} --cancel` stops it",
            file=sys.stderr,
        )
        return INTERRUPTED
    return _finished(args, client, job)


def _finished(args, client: Client, job: dict) -> int:
    if args.output:
        Path(args.output).write_text(json.dumps(job, indent=2, sort_keys=True))
    if job["state"] == "failed":
        print(f"{_what(job)} failed: {job['error']}", file=sys.stderr)
        return FAIL
    if job["state"] == "cancelled":
        print(f"{_what(job)} was cancelled", file=sys.stderr)
        return FAIL
    if job["state"] != "succeeded":
        progress = f", {job['chunks_done']}/{job['chunks_total']} chunks" if job.get("chunks_total") else ""
        print(f"{_what(job)}: {job['state']}{progress}")
        return PASS
    seconds = (job.get("timings") or {}).get("total_s")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    detail = f" ({job['backend_detail']})" if job.get("backend_detail") else ""
    print(f"{_what(job)}: succeeded{took} on {job['backend']}{detail}")
    if job["kind"] == "explanation":
        _print_explanation(job["result"], top=args.top)
        if args.values:
            saved = client.download_artifact(job["result_artifact"], args.values)
            print(f"SHAP values saved as {saved} (NumPy .npz: shap_values, expected_value, rows, features)")
    else:
        _print_fairness(job["result"])
    return PASS


def _what(job: dict) -> str:
    kind = "explanation" if job["kind"] == "explanation" else "fairness assessment"
    return f"{kind} of {job['model']['key']} on {job['dataset']['key']}"


def _print_explanation(result: dict, top: int) -> None:
    """An explanation's summary. The client reads the API's JSON only (it does not import the
    service), by the result fields docs/explain.md lists under "Results"."""
    names = result["output_names"]
    values = result["expected_value"]
    if len(names) == len(values) > 1:  # one output per class
        expected = ", ".join(f"{value:.4g} (class {name})" for name, value in zip(names, values, strict=True))
        shown = f" (class {names[result['plot_output']]})"
    else:
        expected, shown = ", ".join(f"{value:.4g}" for value in values), ""
    print(
        f"{result['rows']:,} rows; additivity residual {result['additivity_residual']:.2g}; "
        f"expected value {expected}"
    )
    print(f"mean |SHAP|{shown}:")
    features = result["top_features"][:top]
    width = max(len(f) for f in features)
    for feature in features:
        print(f"  {feature:<{width}}  {result['importance'][feature][result['plot_output']]:.4g}")


def _print_fairness(result: dict) -> None:
    """A fairness assessment's disparities, groups and warnings, from the result fields
    docs/explain.md lists under "Results", in the order the result gives."""
    boot = result["bootstrap"]
    intervals = f", {boot['resamples']} resamples, {boot['level']:.0%} intervals" if boot["resamples"] else ""
    print(
        f"{result['task']} by {', '.join(result['sensitive_features'])}: {result['rows']:,} rows{intervals}"
    )
    order = result.get("order", {})
    disparities = _ordered(result["disparities"], order.get("disparities"))
    width = max(len(name) for name in disparities)
    for name in disparities:
        print(f"  {name:<{width}}  {_value(result['disparities'][name])}")
    groups = result["groups"]
    if groups:
        metrics = _ordered(groups[0]["metrics"], order.get("metrics"))
        table = [["group", "size", *metrics]]
        for g in groups:
            table.append(
                [g["group"], f"{g['size']:,}", *(_number(g["metrics"][m]["value"]) for m in metrics)]
            )
        _print_table(table)
    for warning in result["warnings"]:
        print(f"warning: {warning}")


def _ordered(names, order: list[str] | None) -> list[str]:
    """The names in the order the service gave (a result's `order`), then any others alphabetically."""
    rank = {name: i for i, name in enumerate(order or ())}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def _print_table(table: list[list[str]], *, numbers: bool = True, indent: str = "  ") -> None:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned when
    they hold numbers."""
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(w) if numbers else cell.ljust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        print((indent + "  ".join(cells)).rstrip())


def _value(item: dict) -> str:
    if "low" in item:
        return f"{_number(item['value'])}  [{_number(item['low'])}, {_number(item['high'])}]"
    return _number(item["value"])


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


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
    verify = commands.add_parser("verify-decision", help="verify a saved gate decision's signature")
    verify.add_argument("file")
    verify.add_argument("--public-key", help="base64 key, or a file saved from /api/v1/gate/public-key")
    for option, what in (
        ("--workspace", "workspace slug"),
        ("--model", "model name"),
        ("--version", "model version"),
        ("--stage", "stage"),
        ("--sha256", "SHA-256 of the model file being deployed"),
    ):
        verify.add_argument(option, help=f"the decision must be for this {what}")
    verify.set_defaults(handler=_verify)
    report = commands.add_parser("verify-report", help="verify a report bundle (signatures and audit hashes)")
    report.add_argument("file")
    report.add_argument("--public-key", help="base64 key, or a file saved from /api/v1/gate/public-key")
    report.set_defaults(handler=_verify_report)
    audit = commands.add_parser(
        "verify-audit", help="recompute the workspace's audit chain and check it extends saved checkpoints"
    )
    audit.add_argument("--checkpoint", action="append", help="a saved checkpoint file (repeatable)")
    audit.add_argument("--public-key", help="base64 key, or a file saved from /api/v1/gate/public-key")
    audit.set_defaults(handler=_verify_audit)
    checkpoint = commands.add_parser("audit-checkpoint", help="have the service sign its audit chain's head")
    checkpoint.add_argument("--output", required=True, help="the file to save the signed checkpoint to")
    checkpoint.set_defaults(handler=_audit_checkpoint)
    sheet = commands.add_parser("datasheet", help="datasheets")
    sheet_commands = sheet.add_subparsers(dest="action", required=True)
    push = sheet_commands.add_parser("push", help="push a model card or datasheet (YAML, JSON, Markdown)")
    push.add_argument("file")
    push.add_argument("--kind", choices=["model_card", "datasheet"])
    push.add_argument("--name")
    push.add_argument("--version")
    push.set_defaults(handler=_datasheet)
    register = commands.add_parser("register", help="upload a skops model and register a version")
    register.add_argument("--model", required=True)
    register.add_argument("--version", required=True)
    register.add_argument("--file", required=True)
    register.add_argument("--dataset", action="append", help="a training dataset version key (repeatable)")
    register.add_argument("--run")
    register.add_argument("--commit")
    register.add_argument("--environment")
    register.add_argument("--metric", action="append", type=_metric, help="name=value (repeatable)")
    register.set_defaults(handler=_register)
    explain = commands.add_parser(
        "explain", help="SHAP values of a model version on a dataset version (a job)"
    )
    _job_arguments(explain)
    explain.add_argument("--target", help="the label column, left out of the features")
    explain.add_argument("--backend", choices=["auto", "gpu", "cpu"])
    explain.add_argument("--rows", type=int, help="explain a seeded sample of this many rows")
    explain.add_argument("--background-rows", type=int)
    explain.add_argument("--chunk-rows", type=int, help="rows per chunk task (workers share the chunks)")
    explain.add_argument("--class-index", type=int, help="the output (class) the summary and plots show")
    _explanation_arguments(explain)
    explain.set_defaults(handler=_explain)
    fair = commands.add_parser("fairness", help="fairlearn metrics by group with bootstrap intervals (a job)")
    _job_arguments(fair)
    fair.add_argument("--target", required=True, help="the label column")
    fair.add_argument(
        "--sensitive", action="append", required=True, help="a sensitive column (repeatable: intersections)"
    )
    fair.add_argument("--positive-label", type=_positive_label, help="the favourable label (default 1)")
    fair.add_argument("--resamples", type=int, help="bootstrap resamples (default 200; 0: none)")
    fair.add_argument("--confidence-level", type=float)
    fair.add_argument("--min-group-size", type=int, help="warn about smaller groups (default 30)")
    fair.set_defaults(handler=_fairness)
    listing = commands.add_parser("jobs", help="the latest explanation and fairness jobs")
    listing.add_argument("--kind", choices=["explanation", "fairness"])
    listing.add_argument("--state", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    listing.add_argument(
        "--limit", type=int, default=20, help="how many, newest first (default 20, at most 500)"
    )
    listing.set_defaults(handler=_jobs)
    job = commands.add_parser("job", help="an explanation or fairness job: its state or result")
    job.add_argument("job_id")
    action = job.add_mutually_exclusive_group()
    action.add_argument("--wait", action="store_true", help="wait until it has finished")
    action.add_argument("--cancel", action="store_true", help="cancel it (a queued or running job)")
    job.add_argument("--timeout", type=float, default=600)
    job.add_argument("--output", help="save the job (JSON) to this file")
    _explanation_arguments(job)
    job.set_defaults(handler=_job)
    return top


def _explanation_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--top", type=int, default=10, help="features to print (default 10)")
    command.add_argument("--values", help="save an explanation's SHAP values (NumPy .npz) to this file")


def _job_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--model", required=True)
    command.add_argument("--version", required=True)
    command.add_argument("--dataset", required=True, help="a DatasetVersion key, e.g. adult-holdout@v2")
    command.add_argument(
        "--feature",
        dest="features",
        action="append",
        help="a feature column, in the model's order (repeatable; default: the names the model records)",
    )
    command.add_argument(
        "--features",
        dest="features",
        action="extend",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        help="feature columns as one comma-separated list (a,b,c)",
    )
    command.add_argument("--seed", type=int)
    command.add_argument(
        "--idempotency-key",
        help="run again with the same key (a CI build id, say) to get the job asked for then, not a new one",
    )
    command.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    command.add_argument("--timeout", type=float, default=600, help="seconds to wait (default 600)")
    command.add_argument("--output", help="save the finished job (JSON, with its result) to this file")


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
