"""Fill a workspace with the demo: the Adult census data through the whole governance path.

Everything goes through the same service functions the API calls, as the people of the demo:
dana (data scientist) records the data and its preparation, trains and registers two model
versions and writes their datasheets; the admin sets the privacy budget and the policies; the
explanations, fairness assessments, DP statistics and the audit report are computed by the Celery
worker (the seed waits for it); rita (compliance reviewer) promotes version 1 to staging, rejects it
for production, and gives version 2 the first of the two approvals production needs, so one
request is left waiting for ravi. audrey (auditor) exports a report.

Safe to run again: each step looks for what it would create and skips it when it is there.
"""

from __future__ import annotations

import hashlib
import platform
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import pandas
import sklearn
import skops
import skops.io as sio
from django.contrib.auth import get_user_model
from django.db import transaction

from core.actors import SYSTEM, Actor
from core.artifacts import artifact_store_bytes
from core.models import ApiToken, Membership, Workspace
from core.roles import Role, scopes_for_role
from core.tokens import api_token_create
from core.work import FINISHED
from core.workspaces import membership_add, workspace_create
from demo import adult, documents
from explain import services as explain_services
from explain.models import Job, JobKind
from governance import reports
from governance import services as governance
from governance.models import (
    AnnexIIIArea,
    Datasheet,
    ModelVersion,
    Policy,
    PromotionRequest,
    Report,
    RequestState,
    RiskTier,
    Stage,
)
from lineage.models import Node
from lineage.native import native_batch
from lineage.services import lineage_record
from privacy import services as privacy
from privacy.models import PrivacyBudget, PrivacyRelease

MODEL = "income-classifier"
EVALUATION = "adult-holdout@v2"
PEOPLE = [
    ("dana", Role.DATA_SCIENTIST, "trains and registers the models"),
    ("rita", Role.COMPLIANCE_REVIEWER, "reviewed both versions"),
    ("ravi", Role.COMPLIANCE_REVIEWER, "has the pending request to review"),
    ("audrey", Role.AUDITOR, "reads the audit log, exports reports"),
    ("ci-bot", Role.CI, "the CI pipeline's account (gate checks)"),
]
# Accounts that never sign in: a pipeline acts with its token only (docs/guide-ci.md).
SERVICE_ACCOUNTS = {"ci-bot"}
# The demo tokens' scopes: the data scientist's role's, and the CI pipeline's gate check only.
TOKEN_SCOPES = {"dana": sorted(scopes_for_role(Role.DATA_SCIENTIST)), "ci-bot": ["gate:check"]}
TERMINAL_JOB_STATES = tuple(str(state) for state in FINISHED)


class SeedError(Exception):
    """The seed cannot go on (the worker never answered, a job failed); the message says why."""


@dataclass
class Outcome:
    workspace: str
    accounts: list[tuple[str, str, str, str]] = field(default_factory=list)  # user, role, password, what
    tokens: dict[str, str] = field(default_factory=dict)
    pending_request: str = ""
    report: str = ""


def _commit() -> dict[str, Any]:
    """The commit the demo's training code comes from: this checkout's HEAD when it is a git
    repository, else the git blob id of demo/adult.py (what `git hash-object` prints)."""
    source = Path(adult.__file__)
    root = source.parents[1]
    git = shutil.which("git")
    try:
        if git is None:
            raise FileNotFoundError("git")
        head = subprocess.run(  # noqa: S603 (a fixed command on our own checkout)
            [git, "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    data = source.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    return {
        "key": head or blob,
        "properties": {"repository": "mlgov", "path": "demo/adult.py", "blob": blob},
    }


def _environment() -> dict[str, Any]:
    python = platform.python_version()
    return {
        "key": f"py{python}-sklearn{sklearn.__version__}",
        "properties": {
            "python": python,
            "platform": platform.platform(terse=True),
            "packages": {
                "scikit-learn": sklearn.__version__,
                "numpy": numpy.__version__,
                "pandas": pandas.__version__,
                "skops": skops.__version__,
            },
        },
    }


class Seeder:
    def __init__(
        self,
        *,
        workspace: str = "demo",
        say: Callable[[str], None] = print,
        password: str | None = None,
        reset_passwords: bool = False,
        explain_rows: int = 1000,
        trees: int = 100,
        timeout: float = 900.0,
    ):
        self.slug = workspace
        self.say = say
        self.password = password
        self.reset_passwords = reset_passwords
        self.explain_rows = explain_rows
        self.trees = trees
        self.timeout = timeout
        self.outcome = Outcome(workspace=workspace)
        self.steps = 0

    # --- helpers -------------------------------------------------------------------------------------

    def step(self, text: str) -> None:
        self.steps += 1
        self.say(f"[{self.steps:2d}/10] {text}")

    def actor(self, username: str) -> Actor:
        return Actor(user=self.users[username])

    def record(self, username: str, events: list[dict[str, Any]]) -> None:
        body = {"events": events}
        lineage_record(
            workspace=self.ws, actor=self.actor(username), batch=native_batch(body), source="demo", body=body
        )

    def store(self, username: str, data: bytes, filename: str) -> str:
        return str(
            artifact_store_bytes(
                workspace=self.ws, actor=self.actor(username), data=data, filename=filename
            ).pk
        )

    def wait(self, what: str, poll: Callable[[], list[tuple[str, str, float]]]) -> None:
        """Poll (label, state, progress) rows until every one is terminal; say what changes."""
        deadline = time.monotonic() + self.timeout
        seen: dict[str, tuple[str, int]] = {}
        while True:
            rows = poll()
            for label, state, progress in rows:
                shown = (state, int(progress * 100) // 25 * 25)
                if seen.get(label) != shown:
                    seen[label] = shown
                    self.say(
                        f"        {label}: {state}{'' if state in TERMINAL_JOB_STATES else f' {shown[1]}%'}"
                    )
            failed = [label for label, state, _ in rows if state == "failed"]
            if failed:
                raise SeedError(f"{what} failed: {', '.join(failed)} (see the worker's log)")
            if all(state in TERMINAL_JOB_STATES for _, state, _ in rows):
                return
            if time.monotonic() > deadline:
                raise SeedError(
                    f"{what} did not finish within {self.timeout:.0f} s: is a Celery worker running on "
                    "this database and broker? (scripts/up.sh starts one; its log is var/log/worker.log)"
                )
            time.sleep(0.5)

    # --- the story -----------------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.monotonic()
        self.people()
        self.data()
        self.privacy()
        versions = self.models()
        self.classify()
        self.datasheets(versions)
        self.policies()
        self.evidence(versions)
        self.promotions(versions)
        self.report(versions)
        self.tokens()
        self.say(f"done in {time.monotonic() - started:.0f} s")
        return self.outcome

    def people(self) -> None:
        self.step(f"workspace {self.slug!r} and its people")
        users = get_user_model()
        admin = users.objects.filter(is_superuser=True).order_by("pk").first()
        with transaction.atomic():
            ws = Workspace.objects.filter(slug=self.slug).first()
            if ws is None:
                ws = workspace_create(slug=self.slug, name="Demo", actor=SYSTEM, admin=admin)
        self.ws = ws
        self.users = {}
        admin_member = Membership.objects.filter(workspace=ws, role=Role.ADMIN).select_related("user").first()
        if admin_member is None:
            raise SeedError(f"workspace {self.slug!r} has no admin; run `manage.py bootstrap` first")
        self.users["admin"] = admin_member.user
        for username, role, what in PEOPLE:
            user = users.objects.filter(username=username).first()
            shown = "(unchanged; --reset-passwords sets new ones)"
            if username in SERVICE_ACCOUNTS:
                if user is None:
                    user = users.objects.create_user(username=username, password=None)
                shown = "(none: it never signs in; it uses its token)"
            elif user is None or self.reset_passwords:
                password = self.password or secrets.token_urlsafe(9)
                if user is None:
                    user = users.objects.create_user(username=username, password=password)
                else:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                shown = password
            if not Membership.objects.filter(workspace=ws, user=user).exists():
                membership_add(workspace=ws, actor=self.actor("admin"), username=username, role=role)
            self.users[username] = user
            self.outcome.accounts.append((username, role.label, shown, what))

    def data(self) -> None:
        self.step("dataset versions: adult@v1 (raw UCI file) -> adult@v2 and adult-holdout@v2 (prepared)")
        raw, self.train_rows, self.holdout = adult.load()
        self.commit, self.environment = _commit(), _environment()
        recorded = Node.objects.filter(
            workspace=self.ws, key__in=["adult@v1", "adult@v2", EVALUATION], artifact__isnull=False
        )
        if recorded.count() == 3:
            # Recorded by an earlier run: recording again would claim that this run's commit made them.
            self.say("        recorded already")
            return
        raw_csv = adult.raw_bytes()
        v1 = self.store("dana", raw_csv, "adult.csv")
        v2 = self.store("dana", self.train_rows.to_csv(index=False).encode(), "adult-v2.csv")
        holdout = self.store("dana", self.holdout.to_csv(index=False).encode(), "adult-holdout-v2.csv")
        source = {
            "source": "UCI Machine Learning Repository, https://doi.org/10.24432/C5XW20",
            "citation": "Becker, B. and Kohavi, R. (1996). Adult.",
            "license": "CC BY 4.0",
        }
        privacy_meta = {
            "unit": 1,
            "public_rows": len(self.train_rows),
            "bounds": {"age": [17, 90], "hours_per_week": [1, 99], "education_num": [1, 16]},
            "categories": {"sex": ["Female", "Male"], "race": adult.RACES},
        }
        self.record(
            "dana",
            [
                {
                    "type": "node",
                    "kind": "DatasetVersion",
                    "key": "adult@v1",
                    "artifact": v1,
                    "version_of": {"kind": "Dataset", "key": "adult"},
                    "properties": {
                        **source,
                        "rows": len(raw),
                        "columns": list(raw.columns),
                    },
                },
                {
                    "type": "node",
                    "kind": "DatasetVersion",
                    "key": "adult@v2",
                    "artifact": v2,
                    "version_of": {"kind": "Dataset", "key": "adult"},
                    "properties": {
                        **source,
                        "rows": len(self.train_rows),
                        "split": "original training file, rows with missing values dropped",
                        "target": adult.LABEL,
                        "privacy": privacy_meta,
                    },
                },
                {
                    "type": "node",
                    "kind": "DatasetVersion",
                    "key": EVALUATION,
                    "artifact": holdout,
                    "version_of": {"kind": "Dataset", "key": "adult-holdout"},
                    "properties": {
                        **source,
                        "rows": len(self.holdout),
                        "split": "original test file, rows with missing values dropped",
                        "target": adult.LABEL,
                    },
                },
                {
                    "type": "run",
                    "run": {
                        "key": "prepare-adult-v2",
                        "properties": {"drop_missing": True, "label": adult.LABEL},
                    },
                    "job": {"key": "prepare-adult"},
                    "inputs": [{"kind": "DatasetVersion", "key": "adult@v1"}],
                    "outputs": [
                        {"kind": "DatasetVersion", "key": "adult@v2"},
                        {"kind": "DatasetVersion", "key": EVALUATION},
                    ],
                    "commit": self.commit,
                    "environment": self.environment,
                },
                *(
                    {
                        "type": "edge",
                        "kind": "DERIVED_FROM",
                        "src": {"kind": "DatasetVersion", "key": key},
                        "dst": {"kind": "DatasetVersion", "key": "adult@v1"},
                    }
                    for key in ("adult@v2", EVALUATION)
                ),
            ],
        )
        counts = f"{len(raw):,} raw rows -> {len(self.train_rows):,} training + {len(self.holdout):,} holdout"
        self.say(f"        {counts}")

    def privacy(self) -> None:
        self.step("privacy budget for adult@v2 and a DP summary computed by the worker")
        node = privacy.dataset_version_node(self.ws, "adult", "v2")
        if not PrivacyBudget.objects.filter(dataset_node=node).exists():
            privacy.budget_set(
                workspace=self.ws, actor=self.actor("admin"), node=node, epsilon=4.0, delta=1e-6
            )
        releases = privacy.summary_request(
            workspace=self.ws,
            actor=self.actor("dana"),
            node=node,
            epsilon=1.0,
            consistent=True,
            on_worker=True,
        )
        release, _ = privacy.release_request(
            workspace=self.ws,
            actor=self.actor("dana"),
            node=node,
            request={
                "statistic": "count",
                "group_by": "race",
                "mechanism": "laplace",
                "epsilon": 0.25,
                "purpose": "group sizes",
            },
            on_worker=True,
        )
        ids = [r.pk for r in [*releases, release]]
        self.wait(
            "the DP statistics",
            lambda: [
                (
                    f"DP {r.query['statistic']}"
                    + (f" of {r.query['column']}" if r.query.get("column") else "")
                    + (f" by {r.query['group_by']}" if r.query.get("group_by") else ""),
                    str(r.state),
                    r.progress,
                )
                for r in PrivacyRelease.objects.filter(pk__in=ids).order_by("created_at")
            ],
        )

    def models(self) -> dict[str, ModelVersion]:
        self.step(f"training and registering {MODEL} versions 1 and 2 (random forests, {self.trees} trees)")
        # The demo's own versions only: users register more (the quickstart's example adds @3).
        versions = {
            v.version: v
            for v in ModelVersion.objects.filter(
                registered_model__workspace=self.ws,
                registered_model__name=MODEL,
                version__in=list(adult.FEATURES),
            )
        }
        if len(versions) == 2:
            return versions
        for trained in adult.train(self.train_rows, self.holdout, trees=self.trees):
            if trained.version in versions:
                continue
            artifact = self.store("dana", sio.dumps(trained.model), f"{MODEL}-{trained.version}.skops")
            versions[trained.version] = governance.version_register(
                workspace=self.ws,
                actor=self.actor("dana"),
                name=MODEL,
                version=trained.version,
                artifact=artifact,
                description=trained.description,
                metrics=trained.metrics,
                run={
                    "key": f"train-{MODEL}-{trained.version}",
                    "job": f"train-{MODEL}",
                    "properties": {"params": trained.params, "features": trained.features},
                },
                datasets=["adult@v2"],
                commit=self.commit,
                environment=self.environment,
            )
            self.say(f"        {MODEL}@{trained.version}: {trained.metrics}")
        return versions

    def classify(self) -> None:
        """The model's risk classification: an income prediction of the kind that decides credit is
        high-risk under the EU AI Act (Annex III, point 5). No change, and no audit event, on a rerun."""
        governance.model_update(
            workspace=self.ws,
            actor=self.actor("admin"),
            name=MODEL,
            risk_tier=RiskTier.HIGH,
            annex_iii_area=AnnexIIIArea.ESSENTIAL_SERVICES,
            intended_purpose=(
                "Estimate whether a person's income exceeds $50,000 a year, as one input to a "
                "creditworthiness assessment reviewed by a loan officer; not for decisions without one."
            ),
            owner="dana (data science)",
        )

    def datasheets(self, versions: dict[str, ModelVersion]) -> None:
        self.step("datasheets: a dataset datasheet for adult@v2, model cards for both versions")
        wanted = [("datasheet", "adult", "v2", documents.adult_datasheet())]
        for version in sorted(versions):
            wanted.append(("model_card", MODEL, version, documents.model_card(version, versions[version])))
        for kind, name, version, content in wanted:
            subject = Node.objects.filter(workspace=self.ws, key=f"{name}@{version}").first()
            if subject is not None and Datasheet.objects.filter(subject=subject, kind=kind).exists():
                continue
            governance.datasheet_push(
                workspace=self.ws,
                actor=self.actor("dana"),
                kind=kind,
                name=name,
                version=version,
                content=content,
            )

    def policies(self) -> None:
        self.step("policies: staging-basics and production-readiness (8 rules)")
        for document in documents.POLICIES:
            if not Policy.objects.filter(workspace=self.ws, name=document["name"]).exists():
                governance.policy_upload(workspace=self.ws, actor=self.actor("admin"), document=document)

    def evidence(self, versions: dict[str, ModelVersion]) -> None:
        self.step("explanations and fairness assessments, computed by the worker")
        jobs = []
        for version in sorted(versions):
            node = explain_services.model_version_node(self.ws, MODEL, version)
            features = adult.FEATURES[version]
            wanted: list[tuple[str, dict[str, Any]]] = [
                (JobKind.EXPLANATION, {"features": features, "rows": self.explain_rows, "backend": "auto"}),
                *(
                    (
                        JobKind.FAIRNESS,
                        {"features": features, "target": adult.LABEL, "sensitive_features": [sensitive]},
                    )
                    for sensitive in adult.SENSITIVE
                ),
            ]
            for kind, params in wanted:
                job = (
                    _find_job(node, kind, params)
                    or explain_services.job_create(
                        workspace=self.ws,
                        actor=self.actor("dana"),
                        kind=kind,
                        model_node=node,
                        dataset_key=EVALUATION,
                        params={"seed": 0, **params},
                    )[0]
                )
                jobs.append(job.pk)
        self.wait(
            "the explanation and fairness jobs",
            lambda: [
                (f"{j.kind} of {j.model_node.key}{_about(j)}", j.state, j.progress or 0.0)
                for j in Job.objects.filter(pk__in=jobs).select_related("model_node").order_by("created_at")
            ],
        )

    def promotions(self, versions: dict[str, ModelVersion]) -> None:
        self.step(
            "promotion: v1 to staging (approved), v1 to production (rejected), v2 to production (pending)"
        )
        v1, v2 = versions["1"], versions["2"]
        self.promote(
            v1,
            Stage.STAGING,
            "Baseline random forest for the shadow deployment.",
            approve=True,
            review=lambda _: "Fine for staging; the production gate will look at fairness.",
        )

        def rejection(request: PromotionRequest) -> str:
            decision = governance.evaluate(v1, Stage.PRODUCTION, request)
            failing = [r["rule"] for r in decision["rules"] if not r["passed"] and r["type"] != "approvals"]
            return (
                f"Rejected: the gate fails {', '.join(failing)}. The model uses sex and race directly and "
                "the equalized-odds gap for sex is too large. Please mitigate and resubmit."
            )

        self.promote(v1, Stage.PRODUCTION, "Best accuracy so far.", approve=False, review=rejection)
        pending, created = self.promote(
            v2,
            Stage.PRODUCTION,
            "Mitigated version: no sex or race features, reweighed training rows.",
            approve=True,
            review=lambda _: (
                "Fairness bounds hold and the datasheets are complete. Approving; a second "
                "reviewer is needed."
            ),
        )
        if created:  # the CI pipeline asked the gate too (a stored, signed decision)
            governance.gate_check(
                workspace=self.ws, actor=self.actor("ci-bot"), version=v2, stage=Stage.PRODUCTION
            )
        pending.refresh_from_db()
        self.outcome.pending_request = str(pending.pk) if pending.state == RequestState.OPEN else ""

    def promote(
        self,
        version: ModelVersion,
        stage: str,
        comment: str,
        *,
        approve: bool,
        review: Callable[[PromotionRequest], str],
    ) -> tuple[PromotionRequest, bool]:
        """dana asks for `stage`, rita reviews; unless a request for it exists already."""
        request = PromotionRequest.objects.filter(model_version=version, stage=stage).first()
        if request is not None:
            return request, False
        request = governance.promotion_request(
            workspace=self.ws, actor=self.actor("dana"), version=version, stage=stage, comment=comment
        )
        governance.review(
            workspace=self.ws,
            actor=self.actor("rita"),
            request_id=request.pk,
            approve=approve,
            comment=review(request),
        )
        return request, True

    def report(self, versions: dict[str, ModelVersion]) -> None:
        self.step(f"audit report for {MODEL}@1, rendered by the worker")
        report = (
            Report.objects.filter(workspace=self.ws, model_version=versions["1"])
            .exclude(state="failed")
            .first()
        )
        if report is None:
            report = reports.report_request(
                workspace=self.ws, actor=self.actor("audrey"), version=versions["1"]
            )
        self.wait(
            "the report",
            lambda: [
                (f"report on {MODEL}@1", r.state, r.progress or 0.0)
                for r in Report.objects.filter(pk=report.pk)
            ],
        )
        self.outcome.report = str(report.pk)

    def tokens(self) -> None:
        self.step("API tokens for dana (examples/) and ci-bot (mlgov gate)")
        for username in ("dana", "ci-bot"):
            name = "demo"
            if ApiToken.objects.filter(
                workspace=self.ws, user=self.users[username], name=name, revoked_at=None
            ).exists():
                continue
            _, raw = api_token_create(
                workspace=self.ws,
                actor=self.actor(username),
                user=self.users[username],
                name=name,
                scopes=TOKEN_SCOPES[username],
            )
            self.outcome.tokens[username] = raw


def _about(job: Job) -> str:
    features = (job.params or {}).get("sensitive_features")
    return f" by {', '.join(features)}" if features else ""


def _find_job(node: Node, kind: str, params: dict[str, Any]) -> Job | None:
    for job in Job.objects.filter(model_node=node, kind=kind).exclude(state="failed"):
        if all((job.params or {}).get(k) == v for k, v in params.items()):
            return job
    return None
