"""The demo as a newcomer gets it: `manage.py demo_seed` run as a process against the test database
while a real Celery worker computes the evidence; then every dashboard page has real content, the
pending request's gate names the rule that fails and why, and the examples/ scripts run against
the live server."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from core import signing
from core.models import ApiToken, Workspace
from core.work import WorkState
from explain.models import Job, JobState
from governance import techfile
from governance.models import ModelVersion, PromotionRequest, Report, RequestState, Stage
from lineage.models import Node
from mlgov.verify import verify_techfile
from privacy.models import PrivacyRelease
from tests.workers import ROOT, process_env, start_worker, stop_worker

PASSWORD = "demo-test-password"
EMPTY_STATES = [
    'class="empty"',
    'class="muted">No ',
    'class="fail">No ',
    ">none yet<",
    "not a member of any workspace",
]


def _login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD), username
    return client


def _page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    page = response.content.decode()
    shown = [marker for marker in EMPTY_STATES if marker in page]
    assert not shown, f"{url} shows an empty state: {shown}"
    return page


def _failing_rules(page: str) -> dict[str, str]:
    """rule id -> reason for the rows of the gate table marked fail."""
    rows = re.findall(
        r'<tr><td>[\w.-]+/([\w.-]+) <span class="muted">\w+</span></td>\s*<td class="fail">fail</td>\s*'
        r"<td>([^<]*)</td>",
        page,
    )
    return dict(rows)


def _run(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_demo_seed_fills_every_page_and_the_examples_run(settings, live_server, monkeypatch):
    queue = f"demo-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue  # the live server's job dispatches
    monkeypatch.setenv("MLGOV_ADMIN_PASSWORD", PASSWORD)
    call_command("bootstrap", stdout=io.StringIO())  # what scripts/up.sh runs first
    env = {"ARTIFACT_ROOT": settings.ARTIFACT_ROOT, "CELERY_DEFAULT_QUEUE": queue}
    worker = start_worker(env, [queue])
    try:
        seed_command = [
            sys.executable,
            "manage.py",
            "demo_seed",
            "--password",
            PASSWORD,
            "--trees",
            "40",
            "--explain-rows",
            "300",
            "--timeout",
            "300",
            "--base-url",
            live_server.url,
        ]
        seed = _run(seed_command, process_env(env), timeout=420)
        assert seed.returncode == 0, seed.stdout[-4000:] + seed.stderr[-4000:]
        output = seed.stdout
        assert "[10/10]" in output
        for username in ("dana", "rita", "ravi", "audrey"):
            assert re.search(rf"{username}\s+.*password: {PASSWORD}", output), output
        # The pipeline's account has no password and its token checks gates, nothing else.
        assert re.search(r"ci-bot\s+.*password: \(none: it never signs in", output), output
        ci_bot = get_user_model().objects.get(username="ci-bot")
        assert not ci_bot.has_usable_password()
        assert ApiToken.objects.get(user=ci_bot, revoked_at=None).scopes == ["gate:check"]
        tokens = dict(re.findall(r"export (MLGOV_TOKEN|MLGOV_CI_TOKEN)=(mlg_\S+)", output))
        assert set(tokens) == {"MLGOV_TOKEN", "MLGOV_CI_TOKEN"}
        assert f"Dashboard:        {live_server.url}/w/demo/" in output

        # What the seed left: computed by the worker, not in this process.
        workspace = Workspace.objects.get(slug="demo")
        assert {
            v.version: v.stage for v in ModelVersion.objects.filter(registered_model__workspace=workspace)
        } == {
            "1": Stage.STAGING,
            "2": Stage.NONE,
        }
        jobs = Job.objects.filter(workspace=workspace)
        assert jobs.count() == 6
        assert set(jobs.values_list("state", flat=True)) == {JobState.SUCCEEDED}
        assert all(j.backend in ("cpu", "gpu") for j in jobs)
        releases = PrivacyRelease.objects.filter(workspace=workspace)
        assert releases.count() == 7
        assert set(releases.values_list("state", flat=True)) == {WorkState.SUCCEEDED}
        assert Report.objects.get(workspace=workspace).state == WorkState.SUCCEEDED
        keys = set(Node.objects.filter(workspace=workspace).values_list("key", flat=True))
        assert {
            "adult@v1",
            "adult@v2",
            "adult-holdout@v2",
            "income-classifier@1",
            "income-classifier@2",
        } <= keys
        # Safe to run again: nothing is made twice, no password changes.
        counts = (Node.objects.count(), Job.objects.count(), PromotionRequest.objects.count())
        again = _run(seed_command, process_env(env), timeout=420)
        assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
        assert "recorded already" in again.stdout
        assert "password: (unchanged" in again.stdout
        assert "MLGOV_TOKEN=" not in again.stdout
        assert (Node.objects.count(), Job.objects.count(), PromotionRequest.objects.count()) == counts
        pending = PromotionRequest.objects.get(workspace=workspace, state=RequestState.OPEN)
        rejected = PromotionRequest.objects.get(workspace=workspace, state=RequestState.REJECTED)

        # Every page of the dashboard, as the role that uses it, has real content.
        slug = {"slug": "demo"}
        ravi, audrey = _login("ravi"), _login("audrey")
        assert "Demo" in _page(ravi, reverse("home"))
        inventory = _page(ravi, reverse("dashboard-inventory", kwargs=slug))
        assert "income-classifier" in inventory
        assert "staging" in inventory
        queue_page = _page(ravi, reverse("dashboard-queue", kwargs=slug))
        assert "income-classifier@2" in queue_page
        request_page = _page(ravi, reverse("dashboard-request", kwargs={**slug, "request_id": pending.pk}))
        for figure in (
            "figure-fairness-1",
            "figure-fairness-2",
            "figure-shap-importance",
            "figure-shap-beeswarm",
            "figure-provenance",
        ):
            assert f'<script id="{figure}" type="application/json">' in request_page
        assert "adult@v2" in request_page
        assert 'id="approve"' in request_page
        # The pending request's gate: which rules fail, and why.
        assert _failing_rules(request_page) == {"two-reviewers": "1 of 2 required approvals"}
        assert "rita</strong> approved" in request_page
        rejected_page = _page(ravi, reverse("dashboard-request", kwargs={**slug, "request_id": rejected.pk}))
        failing = _failing_rules(rejected_page)
        assert "equalized-odds-sex" in failing
        assert "above 0.1" in failing["equalized-odds-sex"]
        audit = _page(audrey, reverse("dashboard-audit", kwargs=slug))
        assert "Chain intact" in audit
        assert "promotion.reject" in audit
        report = Report.objects.get(workspace=workspace)
        assert "income-classifier@1" in _page(
            audrey, reverse("dashboard-report", kwargs={**slug, "report_id": report.pk})
        )
        node = Node.objects.get(workspace=workspace, key="income-classifier@2")
        explorer = _page(ravi, reverse("dashboard-lineage-node", kwargs={**slug, "node_id": node.pk}))
        assert "adult@v2" in explorer

        # The technical file of income-classifier@2: nine sections, every cited hash matches, and the
        # change log since @1 names the removed features, the reweighing and the moved disparities.
        second = ModelVersion.objects.get(registered_model__workspace=workspace, version="2")
        technical = techfile.bundle(second)
        assert [s["number"] for s in technical["techfile"]["sections"]] == list(range(1, 10))
        assert verify_techfile(technical, signing.public_key_document()["public_key"]) == []
        changes = " ".join(s["text"] for s in technical["techfile"]["sections"][5]["statements"])
        assert "Features removed: is_male, is_white." in changes
        assert "reweighing 'none' -> 'sex x label'" in changes
        assert "the data the model learns from changed, possibly a substantial modification" in changes
        assert "Disparities by sex since income-classifier@1: demographic_parity_difference" in changes
        general = " ".join(s["text"] for s in technical["techfile"]["sections"][0]["statements"])
        assert "Risk tier: high (Annex III: Access to essential" in general
        development = " ".join(s["text"] for s in technical["techfile"]["sections"][1]["statements"])
        # The data each fairness assessment ran on, and how many of its rows are training rows.
        assert "The fairness assessment by sex ran on adult-holdout@v2 (file SHA-256 " in development
        evaluated = [
            s["text"]
            for s in technical["techfile"]["sections"][1]["statements"]
            if "ran on adult-holdout" in s["text"]
        ]
        shape = (
            r"ran on adult-holdout@v2 \(file SHA-256 [0-9a-f]{64}\): [\d,]+ rows, "
            r"([\d,]+ of them equal a training row over the model.s columns"
            r"|disjoint from the training data)\.$"
        )
        assert evaluated
        assert all(re.search(shape, text) for text in evaluated), evaluated
        assert "Differential privacy on adult@v2:" in development

        # examples/ against the live server: the data scientist's whole path, then the CI gate.
        client_env = {**process_env(env), "MLGOV_URL": live_server.url, "MLGOV_TOKEN": tokens["MLGOV_TOKEN"]}
        example = _run(
            [sys.executable, "examples/train_and_promote.py", "--trees", "30", "--explain-rows", "200"],
            client_env,
            timeout=300,
        )
        assert example.returncode == 0, example.stdout[-4000:] + example.stderr[-4000:]
        assert "matches ours" in example.stdout
        assert "8. promotion requested" in example.stdout
        third = ModelVersion.objects.get(registered_model__workspace=workspace, version="3")
        assert PromotionRequest.objects.filter(model_version=third, state=RequestState.OPEN).exists()
        assert Job.objects.filter(model_node=third.node, state=JobState.SUCCEEDED).count() == 3
        # `up.sh` again after the quickstart registered @3: the seed leaves the user's version alone.
        after_example = _run(seed_command, process_env(env), timeout=420)
        assert after_example.returncode == 0, after_example.stdout[-4000:] + after_example.stderr[-4000:]
        assert Job.objects.filter(model_node=third.node).count() == 3

        mlgov = str(ROOT / ".venv" / "bin" / "mlgov")
        ci_env = {
            **client_env,
            "MLGOV_TOKEN": tokens["MLGOV_CI_TOKEN"],
            "MLGOV_CLI": mlgov if os.path.exists(mlgov) else "mlgov",
            "DECISION_FILE": str(settings.ARTIFACT_ROOT) + "/decision.json",
        }
        blocked = _run(["bash", "examples/ci_gate.sh", "income-classifier", "2", "production"], ci_env, 120)
        assert blocked.returncode == 1, blocked.stdout + blocked.stderr
        assert "FAIL  production-readiness/two-reviewers" in blocked.stdout
        assert "valid:" in blocked.stdout
        allowed = _run(["bash", "examples/ci_gate.sh", "income-classifier", "1", "staging"], ci_env, 120)
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert "passes the gate to staging" in allowed.stdout
    finally:
        log = stop_worker(worker)
    assert "Traceback" not in log, log[-4000:]
