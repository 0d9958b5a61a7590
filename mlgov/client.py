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

import hashlib
import mimetypes
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mlgov.documents import document_subject, document_without_subject
from mlgov.transport import ApiError, ServiceUnreachable, Transport

# The offline checks of what the service signed, public here too (`from mlgov.client import ...`).
from mlgov.verify import decision_problems, verify_decision, verify_report

__all__ = [
    "FINISHED",
    "ApiError",
    "Client",
    "JobFailed",
    "ServiceUnreachable",
    "decision_problems",
    "node",
    "verify_decision",
    "verify_report",
]

# The states every kind of background work (jobs, DP releases, reports) goes through; these three end it.
FINISHED = ("succeeded", "failed", "cancelled")


def node(kind: str, key: str, **extra: Any) -> dict[str, Any]:
    """A node reference: node("DatasetVersion", "adult@v2", properties={...})."""
    return {"kind": kind, "key": key, **extra}


def _named(kind: str, value: str | dict | None) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    return {"key": value}


class Client(Transport):
    """The service's API, by what a data scientist, a reviewer or a pipeline does with it."""

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
        confidence_level, min_group_size, reference_group, weight_column, seed. Returns the job;
        follow it with wait().
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
        """Push a model card, a model version's Annex IV sections or a dataset datasheet from a YAML,
        JSON or Markdown-with-front-matter file. The subject comes from the arguments or from the
        file's `subject:` front matter ({"kind": "model_card" | "annex_iv" | "datasheet", "name": ...,
        "version": ...})."""
        path = Path(path)
        text = path.read_text()
        fmt = {".md": "markdown", ".markdown": "markdown", ".json": "json"}.get(path.suffix.lower(), "yaml")
        subject = document_subject(text, fmt)
        kind, name, version = (
            kind or subject.get("kind"),
            name or subject.get("name"),
            version or subject.get("version"),
        )
        if not (kind and name and version):
            raise ValueError("say which model or dataset version the datasheet is for (kind, name, version)")
        text = document_without_subject(text, fmt)
        routes = {"model_card": "model-card", "annex_iv": "annex-iv", "datasheet": "datasheet"}
        if kind not in routes:
            raise ValueError(f"kind must be one of {', '.join(routes)}, not {kind!r}")
        route = routes[kind]
        collection = "datasets" if kind == "datasheet" else "models"
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

    def audit_export(self, since: str, until: str) -> dict[str, Any]:
        """The signed audit-log export of a period (ISO 8601 times, inclusive)."""
        return self.request("GET", f"audit/export?since={_quote(since)}&until={_quote(until)}")

    def technical_file(self, name: str, version: str) -> dict[str, Any]:
        """The version's technical file, generated now: the signed JSON bundle."""
        return self.request("GET", f"models/{_quote(name)}/versions/{_quote(version)}/technical-file")

    def approve_technical_file(self, name: str, version: str, comment: str = "") -> dict[str, Any]:
        """Approve the version's technical file as it is now (a compliance reviewer or an admin who
        neither authored the version nor wrote its Annex IV sections)."""
        path = f"models/{_quote(name)}/versions/{_quote(version)}/technical-file/approvals"
        return self.request("POST", path, json_body={"comment": comment})

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
