"""The job commands: `explain` and `fairness` ask for an explanation or a fairness assessment of a
model version and follow it to its result; `jobs` lists the latest, `job` shows, follows or cancels
one. Results are read from the API's JSON only, by the fields docs/explain.md lists under "Results"."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlgov.client import FINISHED, Client, JobFailed
from mlgov.commands import ERROR, FAIL, INTERRUPTED, PASS


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
        reference_group="reference_group",
        weight_column="weight_column",
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
            label = g["group"] + (" (reference)" if g.get("reference") else "")
            table.append([label, f"{g['size']:,}", *(_number(g["metrics"][m]["value"]) for m in metrics)])
        _print_table(table)
    reference = result.get("reference")
    if reference:
        print(f"reference group: {reference['group']} ({reference['chosen']})")
    excluded = result.get("excluded") or []
    if excluded:
        left_out = ", ".join(f"{e['group']} ({e['size']:,} rows)" for e in excluded)
        print(f"left out of the disparities (fewer than {result['min_group_size']} rows): {left_out}")
    data = result.get("data")
    if data:
        overlap = data.get("overlap")
        compared = (
            f"{overlap['rows']:,} of {overlap['of']:,} rows are training rows"
            if overlap is not None
            else "overlap with the training data not proven: " + "; ".join(data.get("notes") or [])
        )
        print(f"data: {data['dataset']} (sha256 {data['sha256'][:12]}…); {compared}")
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


def add_parsers(commands: argparse._SubParsersAction) -> None:
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
    fair.add_argument(
        "--min-group-size", type=int, help="leave smaller groups out of the disparities (default 30)"
    )
    fair.add_argument(
        "--reference",
        dest="reference_group",
        help="the reference group, as its label (sex=Male, race=White); default: the largest group",
    )
    fair.add_argument("--weight-column", help="a numeric column of sample weights")
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
