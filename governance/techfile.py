"""The technical file of a model version: the EU AI Act's technical documentation (Article 11,
Annex IV) in its nine sections, generated from the evidence the service holds and the sections only
people can write (the `annex_iv` datasheet), every generated statement citing the evidence it rests
on by hash.

The signed bundle carries the file (`techfile`) and the evidence documents it cites (`evidence`, by
id): the model's file and the data's files by SHA-256, datasheet revisions, fairness and explanation
results by job, gate decisions with their own signatures, promotion requests with their reviews, the
provenance graph and the audit events with their hashes. The file keeps the SHA-256 of each evidence
document's canonical JSON (`techfile.evidence`), inside what is signed, so `mlgov verify-techfile`
checks offline that every cited document is there and unchanged, and names the one that is not.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.utils import timezone

from core import signing
from core.audit import event_document
from core.canonical_json import canonical_bytes, normalise
from core.models import AuditEvent, Workspace
from explain.selectors import latest_explanation, latest_fairness_assessments
from governance import datasheets
from governance import techfile_coverage as coverage
from governance import techfile_records as records
from governance.models import Datasheet, DatasheetKind, ModelVersion, TechfileApproval
from governance.reports import contents
from governance.request_evidence import version_before
from governance.selectors import datasheet_view
from lineage.kinds import EdgeKind
from lineage.models import Edge, Node
from lineage.stores import get_graph_store

TECHFILE_KIND = "mlgov.technical-file"
TECHFILE_FORMAT = 1

# Annex IV's nine points: (number, title, the annex_iv sections people write for it).
SECTIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "General description of the AI system", ("general_description",)),
    (
        2,
        "Elements of the AI system and its development process",
        ("human_oversight", "predetermined_changes", "cybersecurity"),
    ),
    (3, "Monitoring, functioning and control", ("monitoring_and_control",)),
    (4, "Appropriateness of the performance metrics", ()),
    (5, "The risk-management system (Article 9)", ("risk_management",)),
    (6, "Changes made over the lifecycle", ()),
    (7, "Harmonised standards applied", ("harmonised_standards",)),
    (8, "EU declaration of conformity", ("declaration_of_conformity",)),
    (9, "Post-market monitoring (Article 72)", ("post_market_monitoring",)),
)


def digest(document: Any) -> str:
    """SHA-256 of a document's canonical JSON: how the file cites an evidence document."""
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def approved_digest(cited: dict[str, str]) -> str:
    """What an approval is for: the digests of the evidence cited, less the audit chain's head (which
    every later event moves, the approval's own included)."""
    return digest({ident: sha for ident, sha in cited.items() if ident != "audit:head"})


def _approvals(version: ModelVersion, cited: dict[str, str]) -> list[dict[str, Any]]:
    """The file's approvals, each marked current while the evidence it approved is unchanged."""
    now = approved_digest(cited)
    return [
        {**approval.statement, "signature": approval.signature, "current": approval.evidence_digest == now}
        for approval in TechfileApproval.objects.filter(model_version=version)
    ]


class _File:
    """The statements of each section and the evidence they cite, gathered as they are written."""

    def __init__(self) -> None:
        self.evidence: dict[str, Any] = {}
        self.statements: dict[int, list[dict[str, Any]]] = {number: [] for number, _, _ in SECTIONS}
        self.missing: dict[int, list[str]] = {number: [] for number, _, _ in SECTIONS}

    def cite(self, ident: str, document: Any) -> str:
        self.evidence[ident] = normalise(document)
        return ident

    def say(self, section: int, text: str, *cites: str) -> None:
        self.statements[section].append({"text": text, "cites": sorted(set(cites))})

    def lack(self, section: int, what: str) -> None:
        self.missing[section].append(what)


def bundle(version: ModelVersion) -> dict[str, Any]:
    """The signed technical file of `version`: `{"techfile", "evidence", "signature", "algorithm",
    "key_id"}`."""
    model = version.registered_model
    workspace = model.workspace
    file = _File()
    training = list(
        Node.objects.filter(
            pk__in=Edge.objects.filter(src_id=version.node_id, kind=EdgeKind.TRAINED_ON).values("dst_id")
        )
        .select_related("artifact")
        .order_by("key")
    )
    decisions = contents._gate_decisions(version)
    _describe(file, version, workspace)
    records.model_card(file, version)
    _development(file, version, workspace, training, decisions)
    records.evaluation_data(file, version)
    records.privacy_releases(file, training)
    _metrics(file, version, decisions)
    _changes(file, version, training)
    records.record_keeping(file, workspace)
    authored = _authored(file, version)
    techfile: dict[str, Any] = {
        "kind": TECHFILE_KIND,
        "format": TECHFILE_FORMAT,
        "workspace": workspace.slug,
        "model": model.name,
        "version": version.version,
        "stage": version.stage,
        "artifact_sha256": version.artifact.sha256,
        "generated_at": timezone.now().isoformat(),
        "key_id": signing.key_id(),
        "classification": {
            "risk_tier": model.risk_tier,
            "annex_iii_area": model.annex_iii_area,
            "intended_purpose": model.intended_purpose,
            "owner": model.owner,
        },
        "sections": [
            {
                "number": number,
                "title": title,
                "statements": file.statements[number],
                "authored": authored.get(number, []),
                "missing": file.missing[number],
            }
            for number, title, _ in SECTIONS
        ],
        "evidence": {ident: digest(document) for ident, document in sorted(file.evidence.items())},
    }
    techfile["approvals"] = _approvals(version, techfile["evidence"])
    techfile["coverage"] = coverage.coverage(techfile, file.evidence)
    techfile = normalise(techfile)
    return {
        "techfile": techfile,
        "evidence": file.evidence,
        "signature": signing.sign(techfile),
        "algorithm": "Ed25519",
        "key_id": techfile["key_id"],
    }


def _audit(file: _File, event: AuditEvent) -> str:
    return file.cite(
        f"audit:{event.seq}",
        {"document": event_document(event), "prev_hash": event.prev_hash, "hash": event.hash},
    )


def _describe(file: _File, version: ModelVersion, workspace: Workspace) -> None:
    """Section 1: what the model is, its file and its classification, with the events that set it."""
    model = version.registered_model
    artifact = version.artifact
    model_file = file.cite(
        "artifact:model",
        {
            "name": artifact.filename,
            "sha256": artifact.sha256,
            "size": artifact.size,
            "media_type": artifact.media_type,
        },
    )
    file.say(
        1,
        f"{model.name}@{version.version} is the model in the file with SHA-256 {artifact.sha256}.",
        model_file,
    )
    set_by = [
        _audit(file, e)
        for e in AuditEvent.objects.filter(
            workspace=workspace, action="model.update", target=f"model:{model.name}"
        ).order_by("seq")
        if {"risk_tier", "annex_iii_area", "intended_purpose", "owner"} & set(e.payload.get("changes", {}))
    ]
    if model.risk_tier:
        area = model.get_annex_iii_area_display() if model.annex_iii_area else ""
        text = f"Risk tier: {model.risk_tier}" + (f" (Annex III: {area})" if area else "") + "."
        file.say(1, text, *set_by)
    else:
        file.lack(1, "the model's risk tier is not set")
    if model.risk_tier == "high" and not model.annex_iii_area:
        file.lack(1, "the Annex III area of a high-risk model is not set")
    if model.intended_purpose:
        file.say(1, f"Intended purpose: {model.intended_purpose}", *set_by)
    if model.owner:
        file.say(1, f"Owner: {model.owner}", *set_by)
    else:
        file.lack(1, "no owner is named")


def _sheet_cite(file: _File, sheet: Datasheet) -> str:
    return file.cite(
        f"datasheet:{sheet.kind}:{sheet.subject.key}@{sheet.revision}",
        {
            "kind": sheet.kind,
            "subject": sheet.subject.key,
            "revision": sheet.revision,
            "created_at": sheet.created_at.isoformat(),
            "content": sheet.content,
        },
    )


def _development(
    file: _File, version: ModelVersion, workspace: Workspace, training: list[Node], decisions: list[dict]
) -> None:
    """Section 2: the data and how it was prepared, validation and testing (fairness, explanation),
    the gate decisions and the reviews."""
    graph = get_graph_store(workspace).provenance(version.node_id)
    provenance = file.cite("provenance", contents._graph(graph))
    _training_data(file, training, provenance)
    if graph.truncated:
        file.lack(2, f"the provenance holds more than {len(graph.nodes)} nodes; the nearest are listed")
    kinds = sorted({n.kind for n in graph.nodes})
    file.say(2, f"Provenance: {len(graph.nodes)} lineage nodes upstream ({', '.join(kinds)}).", provenance)
    _validation(file, version, decisions)


def _training_data(file: _File, training: list[Node], provenance: str) -> None:
    """Each training dataset by its file's SHA-256, with its datasheet."""
    for node in training:
        sha = node.artifact.sha256 if node.artifact is not None else None
        data = file.cite(f"dataset:{node.key}", {"key": node.key, "kind": node.kind, "sha256": sha})
        file.say(
            2,
            f"Trained on {node.key}" + (f" (file SHA-256 {sha})." if sha else ", recorded without its file."),
            data,
            provenance,
        )
        sheet = (
            Datasheet.objects.filter(subject=node, kind=DatasheetKind.DATASET)
            .select_related("subject")
            .first()
        )
        if sheet is None:
            file.lack(2, f"{node.key} has no datasheet")
        else:
            done = datasheet_view(sheet=sheet)["completeness"]["overall"]
            file.say(
                2,
                f"Datasheet of {node.key}, revision {sheet.revision}: {done:.0%} complete.",
                _sheet_cite(file, sheet),
            )
    if not training:
        file.lack(2, "the lineage records no training data")


def _validation(file: _File, version: ModelVersion, decisions: list[dict]) -> None:
    """Validation and testing: fairness, the explanation, the gate decisions and the reviews."""
    assessments = latest_fairness_assessments(model_node=version.node)
    for assessment in assessments:
        cite = file.cite(f"job:{assessment.job_id}", contents._fairness(assessment))
        differences = [
            (name, e.value)
            for name, e in assessment.disparities.items()
            if name.endswith("_difference") and e.value is not None
        ]
        worst = max(differences, key=lambda kv: abs(kv[1]), default=None)
        features = ", ".join(assessment.sensitive_features)
        text = f"Fairness by {features} on {assessment.dataset} ({assessment.rows} rows"
        text += f", {len(assessment.groups)} groups)"
        if worst is not None:
            text += f"; largest difference between groups: {worst[0]} {worst[1]:.4g}"
        file.say(2, text + ".", cite)
    if not assessments:
        file.lack(2, "no fairness assessment (discriminatory impact untested)")
    explanation = latest_explanation(model_node=version.node)
    if explanation is None:
        file.lack(2, "no explanation")
    else:
        cite = file.cite(f"job:{explanation.job_id}", contents._explanation(explanation))
        file.say(
            2, f"Explained on {explanation.dataset}: top features {', '.join(explanation.top(5))}.", cite
        )
    for decision in decisions:
        statement = decision["statement"]
        cite = file.cite(f"decision:{statement['decision']}", decision)
        verdict = "passed" if statement["passed"] else "failed"
        file.say(
            2, f"Gate for {statement['stage']} {verdict} ({len(statement['rules'])} rules), signed.", cite
        )
    for request in contents._promotion_requests(version):
        cite = file.cite(f"request:{request['id']}", request)
        reviews = "; ".join(
            f"{r['reviewer']} ({r['role']}) {r['decision']}d: {r['comment']}" for r in request["reviews"]
        )
        file.say(
            2,
            f"Promotion to {request['stage']}, {request['state']}" + (f": {reviews}." if reviews else "."),
            cite,
        )


def _metrics(file: _File, version: ModelVersion, decisions: list[dict]) -> None:
    """Sections 3 and 4: the metrics recorded with the version, and the bounds the gate held them to."""
    register = AuditEvent.objects.filter(
        workspace=version.registered_model.workspace, action="model.register", target=f"model:{version}"
    ).first()
    cites = [_audit(file, register)] if register else []
    metrics = version.metrics or {}
    if metrics:
        shown = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(metrics.items())
        )
        file.say(3, f"Metrics recorded at registration: {shown}.", *cites)
    else:
        file.lack(3, "no metrics were recorded with the version")
    bounds: dict[str, list[str]] = {}
    for decision in decisions:
        ident = f"decision:{decision['statement']['decision']}"
        for rule in decision["rules"]:
            params = rule["parameters"] or {}
            if "metric" in params and ({"min", "max"} & set(params)):
                limit = f"min {params['min']}" if "min" in params else f"max {params['max']}"
                bounds.setdefault(f"{params['metric']} {limit} ({rule['policy']}/{rule['rule']})", []).append(
                    ident
                )
    for text, cited in sorted(bounds.items()):
        file.say(4, f"Held by the gate to {text}.", *cited)
    if not bounds:
        file.lack(4, "no gate rule bounds a performance or fairness metric")


def _changes(file: _File, version: ModelVersion, training: list[Node]) -> None:
    """Section 6: how this version differs from the version before it."""
    before = version_before(version=version)
    if before is None:
        file.say(6, f"{version} is the first version of {version.registered_model.name}.")
        return
    old = file.cite(f"artifact:{before}", {"version": before.version, "sha256": before.artifact.sha256})
    trained_before = sorted(
        Node.objects.filter(
            pk__in=Edge.objects.filter(src_id=before.node_id, kind=EdgeKind.TRAINED_ON).values("dst_id")
        ).values_list("key", flat=True)
    )
    now = sorted(n.key for n in training)
    if trained_before != now:
        file.say(
            6,
            f"Training data changed from {', '.join(trained_before) or 'none'} to "
            f"{', '.join(now) or 'none'}: possibly a substantial modification.",
            old,
            "provenance",
        )
    _run_changes(file, version, before)
    _disparity_changes(file, version, before)
    threshold = settings.TECHFILE_SUBSTANTIAL_CHANGE
    deltas = []
    for name in sorted(set(version.metrics or {}) & set(before.metrics or {})):
        new_value, old_value = version.metrics[name], before.metrics[name]
        if (
            isinstance(new_value, (int, float))
            and isinstance(old_value, (int, float))
            and new_value != old_value
        ):
            flag = (
                " (past the threshold: possibly substantial)"
                if abs(new_value - old_value) > threshold
                else ""
            )
            deltas.append(f"{name} {old_value:.4g} -> {new_value:.4g}{flag}")
    file.say(
        6,
        f"Changed from {before}: " + ("; ".join(deltas) if deltas else "no recorded metric changed") + ".",
        old,
    )


def _run(file: _File, version: ModelVersion) -> tuple[dict[str, Any], str | None]:
    """The properties of the run that produced `version` (its features and parameters), cited."""
    run = (
        Node.objects.filter(
            pk__in=Edge.objects.filter(dst_id=version.node_id, kind=EdgeKind.PRODUCED).values("src_id")
        )
        .order_by("key")
        .first()
    )
    if run is None:
        return {}, None
    properties: dict[str, Any] = run.properties if isinstance(run.properties, dict) else {}
    return properties, file.cite(f"run:{run.key}", {"key": run.key, "properties": properties})


def _run_changes(file: _File, version: ModelVersion, before: ModelVersion) -> None:
    """Features removed or added, and training parameters changed, between the two versions' runs."""
    now, now_cite = _run(file, version)
    then, then_cite = _run(file, before)
    cites = [c for c in (now_cite, then_cite) if c]
    old_features, new_features = then.get("features"), now.get("features")
    if isinstance(old_features, list) and isinstance(new_features, list):
        removed = [f for f in old_features if f not in new_features]
        added = [f for f in new_features if f not in old_features]
        if removed:
            file.say(6, f"Features removed: {', '.join(map(str, removed))}.", *cites)
        if added:
            file.say(6, f"Features added: {', '.join(map(str, added))}.", *cites)
    old_params, new_params = then.get("params"), now.get("params")
    if isinstance(old_params, dict) and isinstance(new_params, dict):
        changed = [
            f"{name} {old_params.get(name)!r} -> {new_params.get(name)!r}"
            for name in sorted(set(old_params) | set(new_params))
            if old_params.get(name) != new_params.get(name)
        ]
        if changed:
            file.say(6, f"Training parameters changed: {'; '.join(changed)}.", *cites)
        weighting = [n for n in set(old_params) | set(new_params) if any(w in n for w in ("weigh", "sampl"))]
        if any(old_params.get(n) != new_params.get(n) for n in weighting):
            file.say(
                6,
                "The training rows are weighted or sampled differently: the data the model learns from "
                "changed, possibly a substantial modification.",
                *cites,
            )


def _disparity_changes(file: _File, version: ModelVersion, before: ModelVersion) -> None:
    """For each set of sensitive features assessed on both versions, how each difference between
    groups moved; a move past TECHFILE_SUBSTANTIAL_CHANGE is flagged."""
    threshold = settings.TECHFILE_SUBSTANTIAL_CHANGE
    old = {a.sensitive_features: a for a in latest_fairness_assessments(model_node=before.node)}
    for new in latest_fairness_assessments(model_node=version.node):
        previous = old.get(new.sensitive_features)
        if previous is None:
            continue
        moves = []
        for name, estimate in sorted(new.disparities.items()):
            was = previous.disparities.get(name)
            if not name.endswith("_difference") or was is None or estimate.value is None or was.value is None:
                continue
            flag = (
                " (past the threshold: possibly substantial)"
                if abs(estimate.value - was.value) > threshold
                else ""
            )
            moves.append(f"{name} {was.value:.4g} -> {estimate.value:.4g}{flag}")
        if moves:
            cites = [file.cite(f"job:{a.job_id}", contents._fairness(a)) for a in (new, previous)]
            features = ", ".join(new.sensitive_features)
            file.say(6, f"Disparities by {features} since {before}: {'; '.join(moves)}.", *cites)


def _authored(file: _File, version: ModelVersion) -> dict[int, list[dict[str, Any]]]:
    """The annex_iv sections people wrote, under the point they belong to, with what they lack."""
    sheet = (
        Datasheet.objects.filter(subject_id=version.node_id, kind=DatasheetKind.ANNEX_IV)
        .select_related("subject")
        .first()
    )
    found: dict[int, list[dict[str, Any]]] = {}
    content = sheet.content if sheet else {}
    report = datasheets.completeness(DatasheetKind.ANNEX_IV, content)
    cite = _sheet_cite(file, sheet) if sheet else None
    for number, _, names in SECTIONS:
        for name in names:
            written = content.get(name) or {}
            info = report["sections"][name]
            found.setdefault(number, []).append(
                {
                    "section": name,
                    "fields": {f: written[f] for f in datasheets.ANNEX_IV_SECTIONS[name] if f in written},
                    "completeness": info["completeness"],
                    "cites": [cite] if cite else [],
                }
            )
            for field in info["missing"]:
                file.lack(number, f"{name}.{field} is not written")
    return found
