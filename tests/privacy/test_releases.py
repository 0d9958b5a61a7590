"""Differentially private releases through the API, the budget ledger, and the noise itself."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from django.db import connections
from django.urls import reverse

from core.actors import Actor
from core.errors import ApplicationError
from core.models import AuditEvent
from lineage.models import Edge, Node
from privacy import mechanisms, services
from privacy.models import PrivacyBudget, PrivacyRelease
from tests.conftest import bearer, session
from tests.explain.conftest import store_bytes
from tests.factories import make_token, make_user, make_workspace
from tests.lineage.helpers import record

ROWS = 2000


def census(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(17, 91, rows),
            "hours": rng.uniform(1, 99, rows).round(1),
            "sex": rng.choice(["Female", "Male"], rows),
            "note": rng.choice(["x", "y"], rows),
        }
    )


def dataset(workspace, user, frame: pd.DataFrame, key: str = "census@v1", public_rows: bool = True):
    artifact = store_bytes(workspace, user, frame.to_csv(index=False).encode(), f"{key}.csv")
    meta = {
        "unit": 1,
        "bounds": {"age": [17, 90], "hours": [0, 100]},
        "categories": {"sex": ["Female", "Male"]},
    }
    if public_rows:
        meta["public_rows"] = len(frame)
    record(
        workspace,
        user,
        {
            "type": "node",
            "kind": "DatasetVersion",
            "key": key,
            "artifact": str(artifact.pk),
            "properties": {"privacy": meta},
        },
    )
    return Node.objects.get(workspace=workspace, key=key)


@pytest.fixture
def data(acme, alice):
    return census()


@pytest.fixture
def node(acme, alice, data):
    return dataset(acme, alice, data)


@pytest.fixture
def budget(acme, ada, node):
    response = session(ada, acme).put(
        reverse("privacy-budget", kwargs={"name": "census", "version": "v1"}),
        {"epsilon": 5.0, "delta": 1e-5},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def client(acme, alice):
    return bearer(make_token(acme, alice, ["privacy:release", "lineage:read"]))


URL = reverse("dp-releases", kwargs={"name": "census", "version": "v1"})


def spent(node) -> float:
    return PrivacyBudget.objects.get(dataset_node=node).epsilon_spent


@pytest.mark.parametrize(
    ("query", "truth"),
    [
        ({"statistic": "count", "epsilon": 1.0}, lambda d: len(d)),
        ({"statistic": "sum", "column": "age", "epsilon": 1.0}, lambda d: d["age"].sum()),
        ({"statistic": "mean", "column": "hours", "epsilon": 1.0}, lambda d: d["hours"].mean()),
        ({"statistic": "variance", "column": "age", "epsilon": 1.0}, lambda d: d["age"].var()),
        ({"statistic": "quantile", "column": "age", "q": 0.5, "epsilon": 1.0}, lambda d: d["age"].median()),
        (
            {"statistic": "count", "mechanism": "gaussian", "epsilon": 1.0, "delta": 1e-6},
            lambda d: len(d),
        ),
    ],
)
def test_each_statistic_is_released_with_its_cost_and_accuracy(client, node, budget, data, query, truth):
    response = client.post(URL, query, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["outcome"] == "released"
    assert body["epsilon"] == query["epsilon"]
    assert body["delta"] == query.get("delta", 0.0)
    assert body["mechanism"] == query.get("mechanism", "laplace")
    assert body["accuracy"]["privacy_map"]["epsilon"] <= query["epsilon"] + 1e-9
    expected = truth(data)
    if query["statistic"] == "quantile":
        assert abs(body["value"] - expected) <= 10  # exponential mechanism on a 201-point grid
    else:
        assert body["noise_scale"] > 0
        # 8 half-widths: far beyond the 95% statement, so this fails only when something is wrong.
        assert abs(body["value"] - expected) <= 8 * body["accuracy"]["half_width"] + 1e-9, body
    assert spent(node) == pytest.approx(query["epsilon"])
    release = Node.objects.get(pk=body["node"])
    assert release.kind == "PrivacyRelease"
    assert Edge.objects.filter(src=release, dst=node, kind="DERIVED_FROM").exists()
    # Wherever the node is shown, its value goes with how noisy it is.
    assert release.properties["accuracy"] == body["accuracy"]["statement"]


def test_histogram_and_group_by_use_public_categories(client, node, budget, data):
    response = client.post(URL, {"statistic": "histogram", "column": "sex", "epsilon": 1.0}, format="json")
    assert response.status_code == 201, response.content
    value = response.json()["value"]
    assert set(value) == {"Female", "Male", "(other)"}
    assert abs(value["Female"] - (data["sex"] == "Female").sum()) < 40
    by_group = client.post(URL, {"statistic": "count", "group_by": "sex", "epsilon": 1.0}, format="json")
    assert by_group.status_code == 201, by_group.content
    assert set(by_group.json()["value"]) == {"Female", "Male"}
    assert spent(node) == pytest.approx(2.0)  # parallel composition: one epsilon for all groups


def test_the_same_query_twice_costs_once_and_gives_the_same_answer(client, node, budget):
    query = {"statistic": "sum", "column": "hours", "epsilon": 0.5}
    first = client.post(URL, query, format="json")
    second = client.post(URL, {**query}, format="json")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["outcome"] == "repeated"
    assert second.json()["value"] == first.json()["value"]
    assert spent(node) == pytest.approx(0.5)
    assert PrivacyRelease.objects.count() == 1


def test_a_release_over_budget_is_refused_with_the_remaining_budget(acme, client, node, budget):
    assert client.post(URL, {"statistic": "count", "epsilon": 4.5}, format="json").status_code == 201
    before = spent(node)
    response = client.post(URL, {"statistic": "sum", "column": "age", "epsilon": 1.0}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["title"] == "Privacy budget exceeded"
    assert body["budget_left"]["epsilon"] == pytest.approx(0.5)
    assert "0.5 and delta" in body["detail"]
    assert spent(node) == before
    assert PrivacyRelease.objects.count() == 1
    refusal = AuditEvent.objects.filter(workspace=acme, action="privacy.refuse").get()
    assert refusal.payload["budget_left"]["epsilon"] == pytest.approx(0.5)


def test_no_budget_no_release(client, node):
    response = client.post(URL, {"statistic": "count", "epsilon": 0.1}, format="json")
    assert response.status_code == 409
    assert "no privacy budget" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"statistic": "count", "epsilon": -1}, "epsilon", "positive"),
        ({"statistic": "mean", "column": "sex", "epsilon": 1}, "column", "not numeric"),
        ({"statistic": "sum", "column": "note", "epsilon": 1}, "column", "not numeric"),
        ({"statistic": "sum", "column": "missing", "epsilon": 1}, "column", "no column 'missing'"),
        ({"statistic": "histogram", "column": "note", "epsilon": 1}, "categories", "public categories"),
        ({"statistic": "count", "mechanism": "gaussian", "epsilon": 1}, "delta", "needs a delta"),
        ({"statistic": "count", "group_by": "note", "epsilon": 1}, "group_by", "must be public"),
        ({"statistic": "quantile", "column": "age", "epsilon": 1}, "q", "strictly between"),
        ({"statistic": "sum", "column": "age", "epsilon": 1, "bounds": [5, 1]}, "bounds", "lower < upper"),
        # JSON true is not the number 1 (it spent 1.0 of a budget).
        ({"statistic": "count", "epsilon": True}, "epsilon", "must be a number, not true or false"),
        ({"statistic": "count", "epsilon": "0.5"}, "epsilon", "must be a number, not a string"),
        ({"statistic": "sum", "column": "age", "epsilon": 1, "bounds": [False, 9]}, "bounds[0]", "not true"),
    ],
)
def test_bad_queries_are_400_naming_the_field(client, node, budget, query, field, message):
    response = client.post(URL, query, format="json")
    assert response.status_code == 400, response.content
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert field in errors
    assert message in errors[field]
    assert spent(node) == 0


def test_missing_bounds_and_private_row_count_are_400(acme, alice, ada, client):
    frame = census(300).assign(weight=1.0)
    dataset(acme, alice, frame, key="raw@v1", public_rows=False)
    services.budget_set(
        workspace=acme, actor=Actor(user=ada), node=Node.objects.get(key="raw@v1"), epsilon=1, delta=0
    )
    url = reverse("dp-releases", kwargs={"name": "raw", "version": "v1"})
    response = client.post(url, {"statistic": "sum", "column": "weight", "epsilon": 0.1}, format="json")
    assert {e["field"] for e in response.json()["errors"]} == {"bounds"}
    response = client.post(url, {"statistic": "mean", "column": "age", "epsilon": 0.1}, format="json")
    assert "public_rows" in response.json()["errors"][0]["message"]


def test_malformed_metadata_bounds_are_a_400_not_a_crash(acme, alice, ada, client):
    frame = census(100)
    artifact = store_bytes(acme, alice, frame.to_csv(index=False).encode(), "odd.csv")
    record(
        acme,
        alice,
        {
            "type": "node",
            "kind": "DatasetVersion",
            "key": "odd@v1",
            "artifact": str(artifact.pk),
            "properties": {"privacy": {"bounds": {"age": ["young", "old"]}}},
        },
    )
    services.budget_set(
        workspace=acme, actor=Actor(user=ada), node=Node.objects.get(key="odd@v1"), epsilon=1, delta=0
    )
    url = reverse("dp-releases", kwargs={"name": "odd", "version": "v1"})
    response = client.post(url, {"statistic": "sum", "column": "age", "epsilon": 0.1}, format="json")
    assert response.status_code == 400
    assert "lower < upper" in response.json()["errors"][0]["message"]


def test_values_outside_the_bounds_are_clamped_not_leaked(acme, alice, ada, client):
    frame = pd.DataFrame({"salary": [1_000_000.0] * 500})
    dataset(acme, alice, frame, key="pay@v1")
    services.budget_set(
        workspace=acme, actor=Actor(user=ada), node=Node.objects.get(key="pay@v1"), epsilon=50, delta=0
    )
    url = reverse("dp-releases", kwargs={"name": "pay", "version": "v1"})
    body = client.post(
        url, {"statistic": "sum", "column": "salary", "bounds": [0, 1], "epsilon": 20}, format="json"
    ).json()
    assert abs(body["value"] - 500) < 5  # each row counts as 1, never as 1,000,000


def test_laplace_noise_spread_matches_its_scale():
    """Many releases of one count at epsilon e: the spread of the noise is that of a Laplace
    distribution of scale 1/e (standard deviation sqrt(2)/e)."""
    epsilon = 0.2
    query = {"statistic": "count", "mechanism": "laplace", "epsilon": epsilon}
    measurement, scale, spent_epsilon, _ = mechanisms.calibrate(query, unit=1, rows=None)
    assert scale == pytest.approx(1 / epsilon, rel=1e-6)
    assert spent_epsilon == pytest.approx(epsilon, rel=1e-6)
    data = [0.0] * 1000
    noise = np.array([measurement(data) - 1000 for _ in range(2000)], dtype=float)
    standard_error = np.sqrt(2) * scale / np.sqrt(len(noise))  # 0.16 here
    assert abs(noise.mean()) < 5 * standard_error  # unbiased (the bound was 0.6, 3.8 standard errors)
    assert noise.std() == pytest.approx(np.sqrt(2) * scale, rel=0.12)


def test_privacy_unit_scales_the_noise(acme, alice):
    query = {"statistic": "count", "mechanism": "laplace", "epsilon": 1.0}
    _, one, _, _ = mechanisms.calibrate(query, unit=1, rows=None)
    _, five, _, _ = mechanisms.calibrate(query, unit=5, rows=None)
    assert five == pytest.approx(5 * one, rel=1e-6)


def test_budget_is_admin_only_and_cannot_drop_below_spent(acme, alice, ada, client, node, budget):
    url = reverse("privacy-budget", kwargs={"name": "census", "version": "v1"})
    assert client.put(url, {"epsilon": 100}, format="json").status_code == 403
    client.post(URL, {"statistic": "count", "epsilon": 2.0}, format="json")
    response = session(ada, acme).put(url, {"epsilon": 1.0}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "epsilon"
    shown = client.get(url).json()
    assert (shown["epsilon_total"], shown["epsilon_spent"], shown["epsilon_left"]) == (5.0, 2.0, 3.0)


def test_dp_summary_spends_its_epsilon_and_is_stored_for_the_datasheet(client, node, budget):
    url = reverse("dp-summary", kwargs={"name": "census", "version": "v1"})
    response = client.post(url, {"epsilon": 1.0}, format="json")
    assert response.status_code == 201, response.content
    statistics = {(r["query"]["statistic"], r["query"].get("column")) for r in response.json()}
    assert statistics == {("count", None), ("histogram", "sex"), ("mean", "age"), ("mean", "hours")}
    assert spent(node) == pytest.approx(1.0)
    summary = client.get(url).json()
    assert summary["epsilon"] == pytest.approx(1.0)
    assert len(summary["statistics"]) == 4
    # Over budget: all or nothing.
    assert client.post(url, {"epsilon": 10.0}, format="json").status_code == 409
    assert spent(node) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.usefixtures("postgres_only")
@pytest.mark.django_db(transaction=True)
def test_32_concurrent_releases_never_overspend():
    user = make_user("analyst")
    workspace = make_workspace("ledger", admin=user)
    node = dataset(workspace, user, census(500), key="ledger@v1")
    services.budget_set(workspace=workspace, actor=Actor(user=user), node=node, epsilon=1.0, delta=0.0)
    start = threading.Barrier(32)
    outcomes: list[str] = []
    lock = threading.Lock()

    def ask(k: int) -> None:
        try:
            start.wait()
            # 32 different queries (a repeated query would be answered from the ledger).
            query = {
                "statistic": "sum",
                "column": "age",
                "bounds": [0, 100 + k],
                "mechanism": "laplace",
                "epsilon": 0.1,
            }
            try:
                services.release_request(
                    workspace=workspace, actor=Actor(user=user), node=node, request=query
                )
                result = "released"
            except ApplicationError as error:
                result = "refused" if error.status == 409 else f"error {error}"
            with lock:
                outcomes.append(result)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("released") == 10, outcomes
    assert outcomes.count("refused") == 22, outcomes
    budget = PrivacyBudget.objects.get(dataset_node=node)
    released = PrivacyRelease.objects.filter(dataset_node=node)
    assert released.count() == 10
    assert budget.epsilon_spent == pytest.approx(sum(r.epsilon for r in released))
    assert budget.epsilon_spent <= budget.epsilon_total + 1e-9
    assert AuditEvent.objects.filter(workspace=workspace, action="privacy.refuse").count() == 22


def test_large_releases_run_on_a_worker_and_a_failure_gives_the_budget_back(
    settings, client, node, budget, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    settings.PRIVACY_INLINE_MAX_ROWS = 100  # the 2,000-row dataset counts as large
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"statistic": "count", "epsilon": 1.0}, format="json")
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    done = PrivacyRelease.objects.get(pk=response.json()["id"])
    assert done.state == "succeeded"
    assert abs(done.value - ROWS) < 40

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "compute", broken)
    query = {"statistic": "sum", "column": "age", "epsilon": 1.0}
    with django_capture_on_commit_callbacks(execute=True):
        failed = client.post(URL, query, format="json").json()
    assert PrivacyRelease.objects.get(pk=failed["id"]).state == "failed"
    assert spent(node) == pytest.approx(1.0)  # only the count: the failed sum gave its epsilon back
    monkeypatch.undo()
    settings.PRIVACY_INLINE_MAX_ROWS = 1_000_000
    retried = client.post(URL, query, format="json")
    assert retried.status_code == 201
    assert spent(node) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("meta", "query", "field"),
    [
        (
            {"categories": {"sex": 5}},
            {"statistic": "histogram", "column": "sex"},
            "dataset.privacy.categories.sex",
        ),
        ({"categories": {"sex": ["M", "M"]}}, {"statistic": "count"}, "dataset.privacy.categories.sex"),
        ({"bounds": [17, 90]}, {"statistic": "sum", "column": "age"}, "dataset.privacy.bounds"),
        ({"public_rows": "many"}, {"statistic": "mean", "column": "age"}, "dataset.privacy.public_rows"),
        ("not an object", {"statistic": "count"}, "dataset.privacy"),
    ],
)
def test_malformed_privacy_metadata_is_a_400_naming_it(acme, alice, ada, client, meta, query, field):
    artifact = store_bytes(acme, alice, census(100).to_csv(index=False).encode(), "bad.csv")
    record(
        acme,
        alice,
        {
            "type": "node",
            "kind": "DatasetVersion",
            "key": "bad@v1",
            "artifact": str(artifact.pk),
            "properties": {"privacy": meta},
        },
    )
    node = Node.objects.get(key="bad@v1")
    services.budget_set(workspace=acme, actor=Actor(user=ada), node=node, epsilon=1, delta=0)
    response = client.post(
        reverse("dp-releases", kwargs={"name": "bad", "version": "v1"}),
        {**query, "epsilon": 0.1},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert field in {e["field"] for e in response.json()["errors"]}
    summary = client.post(reverse("dp-summary", kwargs={"name": "bad", "version": "v1"}), {}, format="json")
    assert summary.status_code == 400, summary.content
    assert PrivacyBudget.objects.get(dataset_node=node).epsilon_spent == 0
    assert not PrivacyRelease.objects.filter(dataset_node=node).exists()


def test_what_opendp_refuses_is_a_400_and_spends_nothing(acme, client, node, budget):
    duplicate = client.post(
        URL,
        {"statistic": "histogram", "column": "sex", "categories": ["Male", "Male"], "epsilon": 0.1},
        format="json",
    )
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"] == [{"field": "categories", "message": "values must be distinct"}]
    huge = client.post(
        URL, {"statistic": "sum", "column": "age", "bounds": [-1e308, 1e308], "epsilon": 0.1}, format="json"
    )
    assert huge.status_code == 400, huge.content
    assert huge.json()["detail"].startswith("OpenDP cannot make this release")
    assert spent(node) == 0


def test_published_counts_are_never_negative_and_the_raw_release_is_kept(client, node, budget):
    """A histogram's "(other)" has a true count of 0 here: at small epsilons half its raw releases are
    negative. What is published is clamped at 0 (post-processing, no privacy cost); the mechanism's
    output itself is kept as `raw_value`, and the published value is derived from it alone."""
    raw_negative = 0
    for index in range(24):
        query = {"statistic": "histogram", "column": "sex", "epsilon": round(0.05 + 0.005 * index, 3)}
        response = client.post(URL, query, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert all(count >= 0 for count in body["value"].values()), body
        assert body["value"] == {k: max(v, 0) for k, v in body["raw_value"].items()}
        stored = PrivacyRelease.objects.get(pk=body["id"])
        assert stored.value == mechanisms.published(stored.query, stored.raw_value)
        raw_negative += body["raw_value"]["(other)"] < 0
    assert raw_negative > 0  # the clamp did something (probability of none: about 2**-24)
    mean = client.post(URL, {"statistic": "mean", "column": "age", "epsilon": 0.5}, format="json").json()
    assert mean["value"] == mean["raw_value"]  # only counts are clamped


def test_substitution_neighbours_cost_twice_the_distance(acme, ada, alice, data):
    """A dataset whose privacy unit is a person's rows *replaced* is calibrated at twice the symmetric
    distance OpenDP counts (a substitution removes and adds): the same epsilon buys half the accuracy."""
    scales = {}
    for neighbouring in ("add_remove", "substitute"):
        key = f"census-{neighbouring.replace('_', '-')}@v1"
        node = dataset(acme, alice, data, key=key)
        meta = {**node.properties["privacy"], "neighbouring": neighbouring}
        record(
            acme,
            alice,
            {"type": "node", "kind": "DatasetVersion", "key": key, "properties": {"privacy": meta}},
        )
        name, version = key.split("@")
        session(ada, acme).put(
            reverse("privacy-budget", kwargs={"name": name, "version": version}),
            {"epsilon": 2.0},
            format="json",
        )
        url = reverse("dp-releases", kwargs={"name": name, "version": version})
        response = session(alice, acme).post(url, {"statistic": "count", "epsilon": 1.0}, format="json")
        assert response.status_code == 201, response.content
        scales[neighbouring] = response.json()["noise_scale"]
        assert response.json()["epsilon"] == pytest.approx(1.0)
    assert scales["substitute"] == pytest.approx(2 * scales["add_remove"], rel=1e-6)


def test_an_unknown_neighbouring_relation_is_a_400_naming_it(acme, alice, data, budget, client):
    node = Node.objects.get(workspace=acme, key="census@v1")
    meta = {**node.properties["privacy"], "neighbouring": "change"}
    record(
        acme,
        alice,
        {"type": "node", "kind": "DatasetVersion", "key": "census@v1", "properties": {"privacy": meta}},
    )
    response = client.post(URL, {"statistic": "count", "epsilon": 0.5}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "dataset.privacy.neighbouring"
