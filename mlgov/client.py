"""A small client for data scientists: record lineage, upload artifacts, query the graph.

    from mlgov import Client, node

    mlgov = Client("http://127.0.0.1:8000", token="mlg_...")   # or MLGOV_URL / MLGOV_TOKEN
    data = mlgov.upload_artifact("adult.csv")
    mlgov.record_node("DatasetVersion", "adult@v2", artifact=data["id"], version_of=node("Dataset", "adult"))
    mlgov.record_run("run-42", job="train-income", inputs=[node("DatasetVersion", "adult@v2")],
                     outputs=[node("ModelVersion", "income@3")], commit="3f2a9c1", environment="py311")
    mlgov.upstream("ModelVersion", "income@3", depth=5)

Only the standard library is used, so the client installs anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# The states every kind of background work (jobs, DP releases, reports) goes through; these three end it.
FINISHED = ("succeeded", "failed", "cancelled")


class ApiError(Exception):
    """The service answered with an error; `problem` is its problem-details document."""

    def __init__(self, status: int, problem: dict[str, Any]):
        self.status = status
        self.problem = problem
        fields = problem.get("errors", [])
        errors = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in fields)
        detail = problem.get("detail", "")
        if detail == errors or any(
            detail in (e.get("message"), f"{e.get('field')}: {e.get('message')}") for e in fields
        ):
            detail = ""  # said once, with its field
        said = "; ".join(part for part in (detail, errors) if part)
        super().__init__(" ".join(f"{status} {problem.get('title', '')}: {said}".split()))


class ServiceUnreachable(OSError):
    """No answer from the service at all (wrong MLGOV_URL, server down, network)."""


class _SameOriginAuthorization(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but send the token only to the origin it was meant for."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        origin = urllib.parse.urlsplit(req.full_url)[:2]
        if new is not None and urllib.parse.urlsplit(newurl)[:2] != origin:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameOriginAuthorization)


def node(kind: str, key: str, **extra: Any) -> dict[str, Any]:
    """A node reference: node("DatasetVersion", "adult@v2", properties={...})."""
    return {"kind": kind, "key": key, **extra}


def _named(kind: str, value: str | dict | None) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    return {"key": value}


class Client:
    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30):
        self.url = (url or os.environ.get("MLGOV_URL", "http://127.0.0.1:8000")).rstrip("/")
        self.token = token or os.environ.get("MLGOV_TOKEN", "")
        self.timeout = timeout

    # --- transport -----------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if json_body is not None:
            data, content_type = json.dumps(json_body).encode(), "application/json"
        with self._open(
            method, path, data=data, content_type=content_type, params=params, headers=headers
        ) as response:
            body = response.read()
        return json.loads(body) if body else None

    @contextlib.contextmanager
    def _open(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        content_type: str | None = None,
        params: dict | None = None,
        accept: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Iterator[Any]:
        """The service's response, open; an error answer raises ApiError with its problem document."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        headers = {**(headers or {}), "Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            response = _OPENER.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"title": error.reason, "detail": raw.decode(errors="replace")[:500]}
            raise ApiError(error.code, problem) from None
        except urllib.error.URLError as error:
            raise ServiceUnreachable(
                f"cannot reach the service at {self.url} ({error.reason}); is MLGOV_URL right?"
            ) from None
        with response:
            yield response

    # --- artifacts -----------------------------------------------------------------------------------
    def upload_artifact(self, path: str | Path, media_type: str | None = None) -> dict[str, Any]:
        """Upload a file (streamed by the service, hashed, de-duplicated). Returns the artifact."""
        path = Path(path)
        declared = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return self.request(
            "POST", "artifacts", data=path.read_bytes(), content_type=declared, params={"filename": path.name}
        )

    def download_artifact(self, artifact_id: str, path: str | Path) -> Path:
        """Save an artifact's content as `path`. The bytes are checked against the SHA-256 the service
        recorded for the artifact; the file appears only complete and checked (ValueError otherwise)."""
        path = Path(path)
        digest = hashlib.sha256()
        partial = path.with_name(f".{path.name}.partial")
        try:
            with self._open("GET", f"artifacts/{artifact_id}/content", accept="*/*") as response:
                expected = (response.headers.get("Digest") or "").removeprefix("sha-256=")
                with partial.open("wb") as out:
                    while chunk := response.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            if expected and digest.hexdigest() != expected:
                raise ValueError(
                    f"artifact {artifact_id}: downloaded bytes have SHA-256 {digest.hexdigest()}, "
                    f"the service recorded {expected}"
                )
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    # --- lineage -------------------------------------------------------------------------------------
    def record(self, *events: dict[str, Any]) -> dict[str, int]:
        """Record native lineage events in one transaction."""
        return self.request("POST", "lineage/events", json_body={"events": list(events)})

    def record_node(
        self,
        kind: str,
        key: str,
        *,
        name: str = "",
        properties: dict | None = None,
        artifact: str | None = None,
        version_of: dict | None = None,
    ) -> dict[str, int]:
        event: dict[str, Any] = {
            "type": "node",
            "kind": kind,
            "key": key,
            "name": name,
            "properties": properties or {},
        }
        if artifact:
            event["artifact"] = artifact
        if version_of:
            event["version_of"] = version_of
        return self.record(event)

    def record_run(
        self,
        run: str,
        *,
        job: str | dict | None = None,
        inputs: Sequence[dict] = (),
        outputs: Sequence[dict] = (),
        commit: str | dict | None = None,
        environment: str | dict | None = None,
        properties: dict | None = None,
    ) -> dict[str, int]:
        """Record a finished run: what it used and produced, from which commit, in which environment."""
        event: dict[str, Any] = {
            "type": "run",
            "run": {"key": run, "properties": properties or {}},
            "inputs": list(inputs),
            "outputs": list(outputs),
        }
        for name, value in (("job", job), ("commit", commit), ("environment", environment)):
            if value is not None:
                event[name] = _named(name, value)
        return self.record(event)

    def find(self, kind: str, key: str) -> dict[str, Any] | None:
        results = self.request("GET", "lineage/nodes", params={"kind": kind, "key": key})["results"]
        return results[0] if results else None

    def _node_id(self, kind: str, key: str) -> int:
        found = self.find(kind, key)
        if found is None:
            raise ApiError(404, {"title": "Not found", "detail": f"no {kind} {key!r}"})
        return found["id"]

    def upstream(self, kind: str, key: str, depth: int = 10) -> dict[str, Any]:
        return self.request(
            "GET", f"lineage/nodes/{self._node_id(kind, key)}/upstream", params={"depth": depth}
        )

    def downstream(self, kind: str, key: str, depth: int = 10) -> dict[str, Any]:
        return self.request(
            "GET", f"lineage/nodes/{self._node_id(kind, key)}/downstream", params={"depth": depth}
        )

    def impact(self, kind: str, key: str) -> dict[str, Any]:
        return self.request("GET", f"lineage/nodes/{self._node_id(kind, key)}/impact")

    def export(self, kind: str, key: str, fmt: str = "prov") -> dict[str, Any]:
        """The node's provenance as "prov" (W3C PROV-JSON), "openlineage" events or a "graph"."""
        return self.request("GET", f"lineage/nodes/{self._node_id(kind, key)}/export/{fmt}")

    # --- explanations and fairness -------------------------------------------------------------------
    def explain(
        self,
        model: str,
        version: str,
        dataset_version: str,
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Ask for SHAP explanations of model version `model@version` on a dataset version. Options:
        features, target, backend ("auto"/"gpu"/"cpu"), rows, background_rows, chunk_rows, output, seed.
        Returns the job; follow it with wait(). With an `idempotency_key` used before for the same
        request, the job asked for then (safe to retry)."""
        path = f"models/{_quote(model)}/versions/{_quote(version)}/explanations"
        return self.request(
            "POST",
            path,
            json_body={"dataset_version": dataset_version, **options},
            headers=_idempotent(idempotency_key),
        )

    def assess_fairness(
        self,
        model: str,
        version: str,
        dataset_version: str,
        *,
        target: str,
        sensitive_features: list[str],
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Ask for a fairness assessment. Options: features, positive_label, resamples,
        confidence_level, min_group_size, seed. Returns the job; follow it with wait().
        `idempotency_key` as for explain()."""
        path = f"models/{_quote(model)}/versions/{_quote(version)}/fairness-assessments"
        body = {
            "dataset_version": dataset_version,
            "target": target,
            "sensitive_features": sensitive_features,
        }
        return self.request("POST", path, json_body={**body, **options}, headers=_idempotent(idempotency_key))

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"jobs/{job_id}")

    def jobs(
        self, *, kind: str | None = None, state: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The workspace's latest jobs, newest first (kind "explanation" or "fairness"; state "queued",
        "running", "succeeded", "failed" or "cancelled")."""
        params = {"kind": kind, "state": state, "page_size": limit}
        return self.request("GET", "jobs", params=params)["results"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; returns it (ApiError 409 if it had already finished)."""
        return self.request("POST", f"jobs/{job_id}/cancel")

    def wait(
        self,
        job: dict[str, Any] | str,
        *,
        timeout: float = 600,
        interval: float = 0.5,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a job until it has finished; raise JobFailed if it failed or was cancelled,
        TimeoutError if it is still running after `timeout` seconds. `progress`, if given, sees the
        job at every poll."""
        job_id = job if isinstance(job, str) else job["id"]
        deadline = time.monotonic() + timeout
        while True:
            current = self.job(job_id)
            if progress is not None:
                progress(current)
            if current["state"] == "succeeded":
                return current
            if current["state"] in FINISHED:  # failed or cancelled: said at once, not at the timeout
                raise JobFailed(current)
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {current['state']} after {timeout:g} s")
            time.sleep(interval)

    # --- differential privacy -------------------------------------------------------------------------
    def dp_release(
        self,
        dataset: str,
        version: str,
        statistic: str,
        *,
        epsilon: float,
        wait: bool = True,
        timeout: float = 600,
        interval: float = 0.5,
        **query: Any,
    ) -> dict[str, Any]:
        """A differentially private statistic of dataset version `dataset@version`, spent from its
        budget (a 409 ApiError names what is left when it does not fit; asking again costs nothing).
        Query: column, mechanism ("laplace"/"gaussian"), delta, bounds, categories, quantile,
        group_by, purpose. Large datasets are computed by a worker; with `wait` (the default) the
        same question is asked again until the answer is there (the ledger answers repeats without
        spending), and a release the worker could not make raises JobFailed (its budget refunded)."""
        path = f"datasets/{_quote(dataset)}/versions/{_quote(version)}/dp-releases"
        body = {"statistic": statistic, "epsilon": epsilon, **query}
        release = self.request("POST", path, json_body=body)
        deadline = time.monotonic() + timeout
        while wait and release["state"] not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"release {release['id']} is still {release['state']} after {timeout} s")
            time.sleep(interval)
            release = self.request("POST", path, json_body=body)
        if release["state"] in ("failed", "cancelled"):
            raise JobFailed(release)
        return release

    def privacy_budget(self, dataset: str, version: str) -> dict[str, Any]:
        return self.request("GET", f"datasets/{_quote(dataset)}/versions/{_quote(version)}/privacy-budget")

    # --- registry, datasheets, policies, gate, promotion ---------------------------------------------
    def register(self, name: str, version: str, artifact: str, **details: Any) -> dict[str, Any]:
        """Register model version `name@version` with its model artifact (id of an uploaded skops file).
        Details: description, metrics, run ({"key", "job"}), datasets (keys), commit, environment."""
        return self.request(
            "POST",
            f"models/{_quote(name)}/versions",
            json_body={"version": version, "artifact": artifact, **details},
        )

    def versions(self, name: str) -> list[dict[str, Any]]:
        """The registered versions of model `name` (all pages)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.request("GET", f"models/{_quote(name)}/versions", params={"page": page})
            found.extend(body["results"])
            if not body.get("next"):
                return found
            page += 1

    def push_datasheet(
        self,
        path: str | Path,
        *,
        kind: str | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """Push a model card or dataset datasheet from a YAML, JSON or Markdown-with-front-matter file.
        The subject comes from the arguments or from the file's `subject:` front matter
        ({"kind": "model_card" | "datasheet", "name": ..., "version": ...})."""
        path = Path(path)
        text = path.read_text()
        fmt = {".md": "markdown", ".markdown": "markdown", ".json": "json"}.get(path.suffix.lower(), "yaml")
        subject = _subject_of(text, fmt)
        kind, name, version = (
            kind or subject.get("kind"),
            name or subject.get("name"),
            version or subject.get("version"),
        )
        if not (kind and name and version):
            raise ValueError("say which model or dataset version the datasheet is for (kind, name, version)")
        text = _without_subject(text, fmt)
        route = "model-card" if kind == "model_card" else "datasheet"
        collection = "models" if kind == "model_card" else "datasets"
        return self.request(
            "PUT",
            f"{collection}/{_quote(name)}/versions/{_quote(str(version))}/{route}",
            json_body={"document": text, "format": fmt},
        )

    def upload_policy(self, path: str | Path) -> dict[str, Any]:
        return self.request("POST", "policies", json_body={"text": Path(path).read_text()})

    def gate(self, name: str, version: str, stage: str) -> dict[str, Any]:
        """Evaluate the gate; the signed decision (`statement`, `signature`)."""
        return self.request(
            "POST", f"models/{_quote(name)}/versions/{_quote(version)}/gate", json_body={"stage": stage}
        )

    def public_key(self) -> dict[str, Any]:
        return self.request("GET", "gate/public-key")

    def audit_chain(self, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """The workspace's audit chain, page by page from the first event to the head, each event
        with the document its hash covers (`mlgov.audit.chain_walk` checks it)."""
        after: int | None = 0
        while after is not None:
            page = self.request("GET", f"audit/chain?after={after}&limit={page_size}")
            yield page
            after = page.get("next_after")

    def audit_checkpoint(self) -> dict[str, Any]:
        """Have the service sign its chain's head now; the checkpoint file to keep."""
        return self.request("POST", "audit/checkpoints")

    def request_promotion(self, name: str, version: str, stage: str, comment: str = "") -> dict[str, Any]:
        path = f"models/{_quote(name)}/versions/{_quote(version)}/promotion-requests"
        return self.request("POST", path, json_body={"stage": stage, "comment": comment})

    def approve(self, request_id: str, comment: str) -> dict[str, Any]:
        return self.request(
            "POST", f"promotion-requests/{request_id}/approve", json_body={"comment": comment}
        )

    def reject(self, request_id: str, comment: str) -> dict[str, Any]:
        return self.request("POST", f"promotion-requests/{request_id}/reject", json_body={"comment": comment})


def _idempotent(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


class JobFailed(Exception):
    """The job failed (`job["error"]` says why) or was cancelled (`job["state"]`)."""

    def __init__(self, job: dict[str, Any]):
        self.job = job
        if job["state"] == "cancelled":
            super().__init__(f"job {job['id']} was cancelled")
        else:
            super().__init__(f"job {job['id']} failed: {job.get('error')}")


def _subject_of(text: str, fmt: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(
            text.split("---", 2)[1] if fmt == "markdown" and text.startswith("---") else text
        )
    except yaml.YAMLError:
        return {}
    subject = data.get("subject") if isinstance(data, dict) else None
    return subject if isinstance(subject, dict) else {}


def _without_subject(text: str, fmt: str) -> str:
    """The document without its `subject:` entry (which says where it goes, and is not content)."""
    import yaml

    if fmt == "markdown" and text.startswith("---"):
        _, front, body = text.split("---", 2)
        data = yaml.safe_load(front) or {}
        data.pop("subject", None)
        return "---\n" + yaml.safe_dump(data, sort_keys=False) + "---" + body
    data = yaml.safe_load(text) or {}
    if isinstance(data, dict):
        data.pop("subject", None)
    return json.dumps(data) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def verify_report(document: dict[str, Any], public_key_b64: str) -> list[str]:
    """Check a report bundle offline; returns the problems found (empty when it verifies): the
    bundle's signature, every gate decision's signature, and every audit event's hash."""
    import hashlib

    problems = []
    report = document.get("report")
    if not isinstance(report, dict):
        return ["the file is not a report bundle"]
    if not verify_decision({"statement": report, "signature": document.get("signature")}, public_key_b64):
        problems.append("the report's signature does not match its content and this key")
    for index, decision in enumerate(report.get("gate_decisions", [])):
        if not verify_decision(decision, public_key_b64):
            problems.append(f"gate decision {index + 1}: the signature does not match")
    for event in report.get("audit_events", []):
        document_ = event.get("document", {})
        digest = hashlib.sha256(event.get("prev_hash", "").encode() + _canonical(document_)).hexdigest()
        if digest != event.get("hash"):
            problems.append(f"audit event {document_.get('seq')}: its content does not match its hash")
    return problems


# Top-level copies of signed fields, as the API serves a decision: `id` is the statement's `decision`.
_DECISION_COPIES = {"id": "decision", "stage": "stage", "passed": "passed", "key_id": "key_id"}


def decision_problems(
    document: dict[str, Any], public_key_b64: str, expect: dict[str, str] | None = None
) -> list[str]:
    """Everything wrong with a saved gate decision, checked offline; empty when it can be relied on.

    Only `statement` is signed, so besides the signature every unsigned top-level copy of a signed
    field must agree with it (a file edited to say `"passed": true` outside the statement is caught),
    and the statement must be about what `expect` names (`workspace`, `model`, `version`, `stage`,
    `artifact_sha256`): a valid decision for another workspace or file is not this one's."""
    if not verify_decision(document, public_key_b64):
        return ["the signature does not match this decision and key"]
    statement = document["statement"]
    problems = [
        f"{key!r} outside the signed statement says {document[key]!r}, "
        f"the statement says {statement.get(field)!r}"
        for key, field in _DECISION_COPIES.items()
        if key in document and str(document[key]) != str(statement.get(field))
    ]
    problems += [
        f"the decision is for {field} {statement.get(field)!r}, not {wanted!r}"
        for field, wanted in (expect or {}).items()
        if wanted is not None and str(statement.get(field)) != str(wanted)
    ]
    return problems


def verify_decision(document: dict[str, Any], public_key_b64: str) -> bool:
    """Check a saved gate decision's Ed25519 signature over the statement's canonical JSON (sorted
    keys, no spaces, UTF-8), with a public key you trust. `decision_problems` checks the rest."""
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    statement = document.get("statement")
    signature = document.get("signature")
    if not isinstance(statement, dict) or not isinstance(signature, str):
        return False
    message = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64)).verify(
            base64.b64decode(signature), message
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
