"""Explanation and fairness jobs through the API, run in-process (eager Celery). Real worker
processes, including one killed mid-job, are in test_workers.py."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
import shap
from django.core.files.storage import default_storage
from django.urls import reverse
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from core.models import AuditEvent
from explain.models import Job, JobChunk
from lineage.models import Edge, Node
from tests.conftest import bearer
from tests.explain.conftest import documented_result_fields, planted_bias, register
from tests.factories import make_token

FEATURES = ["score", "sex"]


@pytest.fixture
def client(acme, alice):
    return bearer(make_token(acme, alice, ["explain:run", "model:read", "lineage:read"]))


@pytest.fixture
def data():
    return planted_bias(4000)


def _explain(client, django_capture_on_commit_callbacks, body, name="income", version="1"):
    url = reverse("model-explanations", kwargs={"name": name, "version": version})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, body, format="json")
    return response


def _assess(client, django_capture_on_commit_callbacks, **options):
    url = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "adult@v1", "features": FEATURES, "target": "label", **options}
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url, body, format="json")


@pytest.mark.parametrize(
    ("cpu_tree", "detail"), [("shap", "shap.TreeExplainer"), ("compiled", "treeshap-numba")]
)
def test_explanation_job_end_to_end(
    acme, alice, client, data, eager_celery, django_capture_on_commit_callbacks, settings, cpu_tree, detail
):
    settings.EXPLAIN_CPU_TREESHAP = cpu_tree
    model = RandomForestClassifier(20, max_depth=6, random_state=0).fit(data[FEATURES], data["label"])
    register(acme, alice, model, data)
    response = _explain(
        client,
        django_capture_on_commit_callbacks,
        {"dataset_version": "adult@v1", "features": FEATURES, "chunk_rows": 1500},
    )
    assert response.status_code == 202, response.content
    assert response["Location"] == response.json()["url"]
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    assert job["backend"] == "cpu"  # no CUDA device here
    assert detail in job["backend_detail"]
    # The job names the files it ran on: the nodes' files when it was asked for.
    model_node = Node.objects.get(workspace=acme, kind="ModelVersion", key="income@1")
    data_node = Node.objects.get(workspace=acme, kind="DatasetVersion", key="adult@v1")
    assert job["model"] == {"node": model_node.pk, "key": "income@1", "artifact": str(model_node.artifact_id)}
    assert job["dataset"]["artifact"] == str(data_node.artifact_id)
    assert (job["chunks_total"], job["chunks_done"], job["progress"]) == (3, 3, 1.0)
    assert {"load_s", "compute_s", "finalize_s", "total_s"} <= set(job["timings"])
    result = job["result"]
    assert set(result) == documented_result_fields("explanation")
    assert result["rows"] == 4000
    assert result["additivity_residual"] <= 1e-5
    assert set(result["top_features"]) == set(FEATURES)
    assert result["figures"]["importance"]["data"][0]["y"]  # plotly bar with features
    assert len(result["figures"]["beeswarm"]["data"][0]["x"]) == 2 * 1000

    # The stored values are shap's own values for the same rows, assembled from the chunks.
    stored = Job.objects.get(pk=job["id"]).result_artifact
    values = np.load(default_storage.open(stored.storage_key, "rb"))["shap_values"]
    expected = np.asarray(shap.TreeExplainer(model).shap_values(data[FEATURES].to_numpy(np.float32)))
    assert values.shape == expected.shape
    assert np.max(np.abs(values - expected)) <= 1e-5
    assert not JobChunk.objects.filter(job_id=job["id"]).exclude(done=True).exists()

    # Lineage: an Explanation that assesses the model version and was evaluated on the data.
    node = Node.objects.get(pk=job["result_node"])
    assert node.kind == "Explanation"
    assert node.artifact_id == stored.pk
    kinds = set(Edge.objects.filter(src=node).values_list("kind", "dst__key"))
    assert kinds == {("ASSESSES", "income@1"), ("EVALUATED_ON", "adult@v1")}
    actions = list(AuditEvent.objects.filter(workspace=acme).values_list("action", flat=True))
    assert actions.count("explanation.request") == 1
    assert actions.count("explanation.complete") == 1


def test_linear_and_model_agnostic_explainers(
    acme, alice, client, data, eager_celery, django_capture_on_commit_callbacks
):
    linear = LogisticRegression().fit(data[FEATURES], data["label"])
    register(acme, alice, linear, data, name="linear")
    knn = KNeighborsClassifier(5).fit(data[FEATURES], data["label"])
    register(acme, alice, knn, data, name="knn")
    for name, detail, rows in (("linear", "LinearExplainer", 500), ("knn", "PermutationExplainer", 40)):
        response = _explain(
            client,
            django_capture_on_commit_callbacks,
            {"dataset_version": "adult@v1", "features": FEATURES, "rows": rows, "background_rows": 50},
            name=name,
        )
        job = client.get(response["Location"]).json()
        assert job["state"] == "succeeded", job["error"]
        assert detail in job["backend_detail"]
        assert job["result"]["rows"] == rows
        assert job["result"]["additivity_residual"] <= 1e-6


def test_hist_gradient_boosting_through_a_job(
    acme, alice, client, data, eager_celery, django_capture_on_commit_callbacks
):
    """A HistGradientBoosting model saved with skops: loaded with the allow-list, explained by the path
    algorithm (or shap, whichever the worker timed faster), adding up to its log-odds."""
    model = HistGradientBoostingClassifier(max_iter=25, random_state=0).fit(data[FEATURES], data["label"])
    register(acme, alice, model, data, name="hist")
    body = {"dataset_version": "adult@v1", "features": FEATURES, "chunk_rows": 2000}
    response = _explain(client, django_capture_on_commit_callbacks, body, name="hist")
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    assert re.fullmatch(r"shap\.TreeExplainer|treeshap-numba \(\d+ threads?\)", job["backend_detail"])
    assert job["result"]["rows"] == 4000
    assert job["result"]["additivity_residual"] <= 1e-5


def test_fairness_job_reports_the_planted_disparity(
    acme, alice, client, eager_celery, django_capture_on_commit_callbacks
):
    frame = planted_bias(20_000)
    model = DecisionTreeClassifier(max_depth=8, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    register(acme, alice, model, frame)
    response = _assess(client, django_capture_on_commit_callbacks, sensitive_features=["sex"])
    assert response.status_code == 202, response.content
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    assert set(job["result"]) == documented_result_fields("fairness")
    parity = job["result"]["disparities"]["demographic_parity_difference"]
    assert parity["low"] <= 0.3 <= parity["high"], parity  # the data was built with 0.6 vs 0.3
    assert abs(parity["value"] - 0.3) < 0.02
    groups = {g["group"]: g for g in job["result"]["groups"]}
    assert set(groups) == {"sex=0", "sex=1"}
    assert job["result"]["figure"]["data"][0]["error_y"]["array"]
    node = Node.objects.get(pk=job["result_node"])
    assert node.kind == "FairnessAssessment"
    assert node.properties["disparities"]["demographic_parity_difference"] == pytest.approx(parity["value"])


def test_intersectional_groups_and_small_group_warning(
    acme, alice, client, eager_celery, django_capture_on_commit_callbacks
):
    frame = planted_bias(400)
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(frame[FEATURES], frame["label"])
    register(acme, alice, model, frame)
    response = _assess(
        client,
        django_capture_on_commit_callbacks,
        sensitive_features=["sex", "race"],
        min_group_size=150,
        resamples=50,
    )
    job = client.get(response["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    assert len(job["result"]["groups"]) == 4
    assert "sex=0, race=a" in {g["group"] for g in job["result"]["groups"]}
    assert any("fewer than 150" in w for w in job["result"]["warnings"])


def test_a_pickled_model_fails_the_job_unless_the_operator_allows_it(
    acme, alice, client, data, eager_celery, django_capture_on_commit_callbacks, settings
):
    """Pickles need the server's setting and the workspace's, both the operator's; then the model runs
    in the sandbox (a child process of whoever runs the task: here the test itself) and explains as
    the same model saved with skops does."""
    from core.actors import SYSTEM
    from core.workspaces import workspace_allow_pickle

    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data[FEATURES], data["label"])
    register(acme, alice, model, data, name="skops")
    register(acme, alice, model, data, model_bytes=pickle.dumps(model))
    body = {"dataset_version": "adult@v1", "features": FEATURES}

    def explain():
        return client.get(_explain(client, django_capture_on_commit_callbacks, body)["Location"]).json()

    settings.MODELS_ALLOW_PICKLE = False
    workspace_allow_pickle(workspace=acme, actor=SYSTEM, allowed=True)  # the workspace's half alone
    refused = [explain()]
    settings.MODELS_ALLOW_PICKLE = True
    workspace_allow_pickle(workspace=acme, actor=SYSTEM, allowed=False)  # the server's half alone
    refused.append(explain())
    for job in refused:
        assert job["state"] == "failed"
        assert "pickle" in job["error"]
        assert "skops.io.dump" in job["error"]
        assert job["result_node"] is None
    assert AuditEvent.objects.filter(workspace=acme, action="explanation.fail").count() == 2

    workspace_allow_pickle(workspace=acme, actor=SYSTEM, allowed=True)
    job = explain()
    assert job["state"] == "succeeded", job["error"]
    assert job["backend_detail"] == "shap.TreeExplainer, in the pickle sandbox"
    reference = client.get(
        _explain(client, django_capture_on_commit_callbacks, body, name="skops")["Location"]
    ).json()
    assert reference["state"] == "succeeded", reference["error"]
    assert job["result"]["importance"] == reference["result"]["importance"]
    assert job["result"]["expected_value"] == reference["result"]["expected_value"]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (["score", "income"], "no column 'income'"),
        (["score", "race"], "column 'race' must be numeric"),
        (["score"], "the model takes 2 features"),
    ],
)
def test_bad_data_fails_the_job_naming_the_problem(
    acme, alice, client, data, eager_celery, django_capture_on_commit_callbacks, features, message
):
    register(acme, alice, DecisionTreeClassifier(max_depth=3).fit(data[FEATURES], data["label"]), data)
    body = {"dataset_version": "adult@v1", "features": features}
    job = client.get(_explain(client, django_capture_on_commit_callbacks, body)["Location"]).json()
    assert job["state"] == "failed"
    assert message in job["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "dataset_version"),
        ({"dataset_version": "nope@v9"}, "dataset_version"),
        ({"dataset_version": "adult@v1", "backend": "tpu"}, "backend"),
        ({"dataset_version": "adult@v1", "features": ["a", "a"]}, "features"),
        ({"dataset_version": "adult@v1", "rows": 0}, "rows"),
    ],
)
def test_bad_requests_are_400_naming_the_field(acme, alice, client, data, body, field):
    register(acme, alice, DecisionTreeClassifier(max_depth=2).fit(data[FEATURES], data["label"]), data)
    response = client.post(
        reverse("model-explanations", kwargs={"name": "income", "version": "1"}), body, format="json"
    )
    assert response.status_code == 400
    assert field in {e["field"] for e in response.json()["errors"]} or response.json().get("field") == field
    assert not Job.objects.exists()


def test_fairness_requests_are_validated(acme, alice, client, data):
    register(acme, alice, DecisionTreeClassifier(max_depth=2).fit(data[FEATURES], data["label"]), data)
    url = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    response = client.post(
        url, {"dataset_version": "adult@v1", "target": "label", "resamples": -1}, format="json"
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"sensitive_features", "resamples"}


def test_unknown_model_version_is_404_and_scopes_are_enforced(acme, alice, bob, client, data):
    url = reverse("model-explanations", kwargs={"name": "ghost", "version": "1"})
    assert client.post(url, {"dataset_version": "adult@v1"}, format="json").status_code == 404
    register(acme, alice, DecisionTreeClassifier(max_depth=2).fit(data[FEATURES], data["label"]), data)
    reviewer = bearer(make_token(acme, bob, ["model:read"]))
    url = reverse("model-explanations", kwargs={"name": "income", "version": "1"})
    assert reviewer.post(url, {"dataset_version": "adult@v1"}, format="json").status_code == 403
    assert reviewer.get(url).status_code == 200


def test_requesting_writes_one_audit_event_and_queues(acme, alice, client, data):
    register(acme, alice, DecisionTreeClassifier(max_depth=2).fit(data[FEATURES], data["label"]), data)
    acme.refresh_from_db()
    before = acme.audit_head_seq
    response = client.post(
        reverse("model-explanations", kwargs={"name": "income", "version": "1"}),
        {"dataset_version": "adult@v1"},
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    acme.refresh_from_db()
    assert acme.audit_head_seq == before + 1
    listed = client.get(reverse("job-list") + "?kind=explanation").json()
    assert [j["id"] for j in listed["results"]] == [response.json()["id"]]


def test_backend_details_join_once_each_and_fit_their_column():
    from explain.execution import joined_detail
    from explain.models import BACKEND_DETAIL_LENGTH

    assert joined_detail("", "cupy-treeshap (auto layout)") == "cupy-treeshap (auto layout)"
    joined = joined_detail("cupy-treeshap (auto layout)", "cupy-treeshap (tiled layout)")
    assert joined == "cupy-treeshap (auto layout); cupy-treeshap (tiled layout)"
    assert joined_detail(joined, "cupy-treeshap (tiled layout)") == joined
    details = ""
    for threads in range(40):
        details = joined_detail(details, f"treeshap-numba ({threads} threads)")
    assert len(details) == BACKEND_DETAIL_LENGTH
    assert details.endswith("...")
    assert Job._meta.get_field("backend_detail").max_length == BACKEND_DETAIL_LENGTH


def _queued_job(acme, alice, client, data, model, chunk_rows: int) -> str:
    """An explanation job asked for through the API and left queued (nothing dispatched here); the
    tests drive its steps themselves."""
    register(acme, alice, model.fit(data[FEATURES], data["label"]), data)
    url = reverse("model-explanations", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "adult@v1", "features": FEATURES, "chunk_rows": chunk_rows}
    return client.post(url, body, format="json").json()["id"]


def _chunk_files(job_id: str) -> list[str]:
    job = Job.objects.get(pk=job_id)
    try:
        return default_storage.listdir(f"jobs/{job.workspace_id}/{job.id}")[1]
    except FileNotFoundError:
        return []


def test_cancelling_a_running_job_stops_its_chunks_and_records_nothing(
    acme, alice, bob, mallory, umbrella, client, data, django_capture_on_commit_callbacks, monkeypatch
):
    from explain import execution, explainers

    job_id = _queued_job(
        acme, alice, client, data, RandomForestClassifier(10, max_depth=5, random_state=0), chunk_rows=1000
    )
    assert execution.job_start(job_id) == [0, 1, 2, 3]
    assert execution.chunk_run(job_id, 0) is False  # one of four done; its output waits in storage
    assert len(_chunk_files(job_id)) == 1

    # Chunk 1 is being computed when the job is cancelled: its output is thrown away when it ends.
    cancel_url = reverse("job-cancel", kwargs={"job_id": job_id})
    computing = explainers.shap_block

    def cancelled_meanwhile(*args, **kwargs):
        block = computing(*args, **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(cancel_url)
        assert response.status_code == 200, response.content
        assert response.json()["state"] == "cancelled"
        assert response.json()["chunks_done"] == 1
        return block

    monkeypatch.setattr(explainers, "shap_block", cancelled_meanwhile)
    with django_capture_on_commit_callbacks(execute=True):
        assert execution.chunk_run(job_id, 1) is False
    monkeypatch.setattr(explainers, "shap_block", computing)
    assert _chunk_files(job_id) == []  # chunk 0's output deleted, chunk 1's never kept
    assert execution.chunk_run(job_id, 2) is False  # later deliveries do nothing
    assert execution.job_start(job_id) == []
    execution.job_finalize(job_id)
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.chunks_done, job.result, job.result_node) == ("cancelled", 1, None, None)
    assert list(JobChunk.objects.filter(job=job, done=True).values_list("index", flat=True)) == [0]
    assert not Node.objects.filter(workspace=acme, kind="Explanation").exists()

    # Once in the audit log, by whom; cancelling again changes nothing.
    events = AuditEvent.objects.filter(workspace=acme, action="explanation.cancel")
    assert [e.target for e in events] == [f"job:{job_id}"]
    assert events.get().actor.endswith(":alice")  # the token of alice's that cancelled
    assert client.post(cancel_url).json()["state"] == "cancelled"
    assert events.count() == 1
    listed = client.get(reverse("job-list") + "?state=cancelled").json()["results"]
    assert [j["id"] for j in listed] == [job_id]

    # Only those who may ask may cancel, only in their own workspace.
    reviewer = bearer(make_token(acme, bob, ["model:read"]))
    assert reviewer.post(cancel_url).status_code == 403
    outsider = bearer(make_token(umbrella, mallory, ["explain:run", "model:read"]))
    assert outsider.post(cancel_url).status_code == 404


def test_a_finished_job_cannot_be_cancelled(
    acme, alice, client, data, eager_celery, django_capture_on_commit_callbacks
):
    register(acme, alice, DecisionTreeClassifier(max_depth=3).fit(data[FEATURES], data["label"]), data)
    body = {"dataset_version": "adult@v1", "features": FEATURES}
    job = client.get(_explain(client, django_capture_on_commit_callbacks, body)["Location"]).json()
    assert job["state"] == "succeeded", job["error"]
    response = client.post(reverse("job-cancel", kwargs={"job_id": job["id"]}))
    assert response.status_code == 409
    assert "already succeeded" in response.json()["detail"]
    assert client.get(job["url"]).json()["state"] == "succeeded"
    assert not AuditEvent.objects.filter(workspace=acme, action="explanation.cancel").exists()


def test_a_failed_job_leaves_no_chunk_outputs_behind(
    acme, alice, client, data, django_capture_on_commit_callbacks, monkeypatch
):
    from explain import execution, explainers, tasks

    job_id = _queued_job(
        acme, alice, client, data, RandomForestClassifier(10, max_depth=5, random_state=0), chunk_rows=2000
    )
    assert execution.job_start(job_id) == [0, 1]
    assert execution.chunk_run(job_id, 0) is False
    assert len(_chunk_files(job_id)) == 1

    def broken(*args, **kwargs):
        raise FloatingPointError("the model's output is not finite")

    monkeypatch.setattr(explainers, "shap_block", broken)
    with django_capture_on_commit_callbacks(execute=True):  # the task fails the job (core/work.py)
        tasks.run_chunk.apply(args=(job_id, 1))
    job = Job.objects.get(pk=job_id)
    assert job.state == "failed"
    assert job.error == "chunk 1: FloatingPointError: the model's output is not finite"
    assert _chunk_files(job_id) == []


def test_a_job_cancelled_while_its_result_is_assembled_records_no_result(
    acme, alice, client, data, django_capture_on_commit_callbacks, monkeypatch
):
    from core.models import Artifact
    from explain import execution

    job_id = _queued_job(
        acme, alice, client, data, DecisionTreeClassifier(max_depth=4, random_state=0), chunk_rows=2000
    )
    assert execution.job_start(job_id) == [0, 1]
    assert execution.chunk_run(job_id, 0) is False
    assert execution.chunk_run(job_id, 1) is True  # the last chunk: its worker assembles the result
    assembling = execution._explanation_result

    def cancelled_meanwhile(job):
        result = assembling(job)
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(reverse("job-cancel", kwargs={"job_id": job_id})).status_code == 200
        return result

    monkeypatch.setattr(execution, "_explanation_result", cancelled_meanwhile)
    artifacts = Artifact.objects.filter(workspace=acme).count()
    execution.job_finalize(job_id)
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.result, job.result_artifact) == ("cancelled", None, None)
    assert Artifact.objects.filter(workspace=acme).count() == artifacts
    assert not AuditEvent.objects.filter(workspace=acme, action="explanation.complete").exists()
    assert _chunk_files(job_id) == []


def test_a_job_cancelled_while_its_inputs_load_plans_no_chunks(
    acme, alice, client, data, django_capture_on_commit_callbacks, monkeypatch
):
    from explain import execution

    job_id = _queued_job(
        acme, alice, client, data, DecisionTreeClassifier(max_depth=4, random_state=0), chunk_rows=100
    )
    loading = execution.job_inputs

    def cancelled_meanwhile(job):
        inputs = loading(job)
        assert client.post(reverse("job-cancel", kwargs={"job_id": job_id})).status_code == 200
        return inputs

    monkeypatch.setattr(execution, "job_inputs", cancelled_meanwhile)
    assert execution.job_start(job_id) == []  # nothing for run_job to fan out
    job = Job.objects.get(pk=job_id)
    assert (job.state, job.chunks_total) == ("cancelled", 0)
    assert not JobChunk.objects.filter(job=job).exists()


def test_an_idempotency_key_makes_a_retried_request_safe(acme, alice, mallory, umbrella, client, data):
    register(acme, alice, DecisionTreeClassifier(max_depth=2).fit(data[FEATURES], data["label"]), data)
    url = reverse("model-explanations", kwargs={"name": "income", "version": "1"})
    body = {"dataset_version": "adult@v1", "features": FEATURES, "rows": 500}
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="build-42-explain")
    assert first.status_code == 202, first.content
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="build-42-explain")
    assert again.status_code == 200  # the job made the first time, not a new one
    assert again.json()["id"] == first.json()["id"]
    assert again["Location"] == first["Location"]
    assert Job.objects.filter(workspace=acme).count() == 1
    assert AuditEvent.objects.filter(workspace=acme, action="explanation.request").count() == 1

    # The key reused for another request, even of another kind, is refused; nothing is made.
    other = client.post(url, {**body, "rows": 600}, format="json", HTTP_IDEMPOTENCY_KEY="build-42-explain")
    assert other.status_code == 409
    assert [e["field"] for e in other.json()["errors"]] == ["Idempotency-Key"]
    assert first.json()["id"] in other.json()["detail"]
    fairness = reverse("model-fairness-assessments", kwargs={"name": "income", "version": "1"})
    assess = {**body, "target": "label", "sensitive_features": ["sex"]}
    assert (
        client.post(fairness, assess, format="json", HTTP_IDEMPOTENCY_KEY="build-42-explain").status_code
        == 409
    )
    for bad in ("x" * 201, "tab\there"):
        refused = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=bad)
        assert refused.status_code == 400
        assert [e["field"] for e in refused.json()["errors"]] == ["Idempotency-Key"]
    assert Job.objects.filter(workspace=acme).count() == 1
    assert client.post(url, body, format="json").status_code == 202  # no key: a new job each time
    assert Job.objects.filter(workspace=acme).count() == 2

    # Keys belong to a workspace: the same key elsewhere is another request.
    register(umbrella, mallory, DecisionTreeClassifier(max_depth=2).fit(data[FEATURES], data["label"]), data)
    outsider = bearer(make_token(umbrella, mallory, ["explain:run", "model:read"]))
    theirs = outsider.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="build-42-explain")
    assert theirs.status_code == 202
    assert theirs.json()["id"] != first.json()["id"]


def test_two_requests_racing_with_one_key_make_one_job(acme, alice, data, monkeypatch):
    """The second request looked for the key before the first committed; its insert then meets the
    unique constraint and it answers with the first request's job."""
    from core.actors import Actor
    from explain import selectors, services

    register(acme, alice, DecisionTreeClassifier(max_depth=2).fit(data[FEATURES], data["label"]), data)
    node = selectors.model_version_node(acme, "income", "1")
    ask = {
        "workspace": acme,
        "actor": Actor(user=alice),
        "kind": "explanation",
        "model_node": node,
        "dataset_key": "adult@v1",
        "params": {"features": FEATURES, "seed": 0},
        "idempotency_key": "race",
    }
    winner, created = services.job_create(**ask)
    assert created
    looked = []
    lookup = services._job_for_key

    def not_yet_committed(*args):
        looked.append(args)
        return None if len(looked) == 1 else lookup(*args)

    monkeypatch.setattr(services, "_job_for_key", not_yet_committed)
    loser, created = services.job_create(**ask)
    assert (loser.pk, created, len(looked)) == (winner.pk, False, 2)
    assert Job.objects.filter(workspace=acme).count() == 1
