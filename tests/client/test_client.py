"""The Python client against the live test server: a data scientist's few lines."""

from __future__ import annotations

import pytest

from mlgov import ApiError, Client, node
from tests.factories import make_token, make_user, make_workspace


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_record_lineage_in_a_few_lines(live_server, tmp_path):
    user = make_user("dana")
    workspace = make_workspace("labs", admin=user)
    token = make_token(workspace, user, ["lineage:read", "lineage:write", "artifact:write"])
    mlgov = Client(live_server.url, token=token)

    data = tmp_path / "adult.csv"
    data.write_text("age,income\n39,<=50K\n50,>50K\n")
    artifact = mlgov.upload_artifact(data)
    assert artifact["media_type"] == "text/csv"
    assert mlgov.upload_artifact(data)["id"] == artifact["id"]

    mlgov.record_node(
        "DatasetVersion", "adult@v2", artifact=artifact["id"], version_of=node("Dataset", "adult")
    )
    counts = mlgov.record_run(
        "run-42",
        job="train-income",
        inputs=[node("DatasetVersion", "adult@v2")],
        outputs=[node("ModelVersion", "income@3")],
        commit="3f2a9c1",
        environment="py311",
        properties={"accuracy": 0.85},
    )
    assert counts["edges_created"] == 6
    up = mlgov.upstream("ModelVersion", "income@3", depth=3)
    assert {n["key"] for n in up["nodes"]} == {
        "income@3",
        "run-42",
        "adult@v2",
        "adult",
        "train-income",
        "3f2a9c1",
        "py311",
    }
    assert mlgov.find("DatasetVersion", "adult@v2")["artifact"] == artifact["id"]
    assert "entity" in mlgov.export("ModelVersion", "income@3", "prov")

    with pytest.raises(ApiError) as refused:
        mlgov.record({"type": "node", "kind": "Spaceship", "key": "x"})
    assert refused.value.status == 400
    assert "events[0].kind" in str(refused.value)
    with pytest.raises(ApiError) as anonymous:
        Client(live_server.url, token="").find("Dataset", "adult")
    assert anonymous.value.status == 401


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_explain_and_assess_fairness_then_wait(live_server, tmp_path, eager_celery):
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    from mlgov import JobFailed
    from tests.explain.conftest import planted_bias

    user = make_user("dana")
    workspace = make_workspace("labs", admin=user)
    scopes = ["lineage:read", "lineage:write", "artifact:write", "explain:run", "model:read"]
    mlgov = Client(live_server.url, token=make_token(workspace, user, scopes))
    frame = planted_bias(3000)
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    (tmp_path / "data.csv").write_text(frame.to_csv(index=False))
    sio.dump(model, tmp_path / "model.skops")
    data = mlgov.upload_artifact(tmp_path / "data.csv")
    weights = mlgov.upload_artifact(tmp_path / "model.skops")
    mlgov.record_node("DatasetVersion", "bias@v1", artifact=data["id"])
    mlgov.record_node("ModelVersion", "scorer@1", artifact=weights["id"], version_of=node("Model", "scorer"))

    explanation = mlgov.wait(mlgov.explain("scorer", "1", "bias@v1", rows=500), timeout=60)
    assert explanation["result"]["rows"] == 500
    assert explanation["result"]["top_features"][0] in {"score", "sex"}
    fairness = mlgov.wait(
        mlgov.assess_fairness(
            "scorer", "1", "bias@v1", target="label", sensitive_features=["sex"], resamples=100
        ),
        timeout=60,
    )
    assert 0.25 < fairness["result"]["disparities"]["demographic_parity_difference"]["value"] < 0.35

    failing = mlgov.explain("scorer", "1", "bias@v1", features=["score", "nope"])
    with pytest.raises(JobFailed, match="no column 'nope'"):
        mlgov.wait(failing, timeout=60)
    with pytest.raises(ApiError) as error:
        mlgov.explain("scorer", "1", "missing@v9")
    assert error.value.status == 400


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_dp_release_computed_by_a_worker_is_waited_for_and_spent_once(
    live_server, tmp_path, eager_celery, settings
):
    from core.actors import Actor
    from privacy.models import PrivacyBudget
    from privacy.selectors import dataset_version_node
    from privacy.services import budget_set

    settings.PRIVACY_INLINE_MAX_ROWS = 10  # this dataset is "large": a worker computes its releases
    user = make_user("dana")
    workspace = make_workspace("labs", admin=user)
    mlgov = Client(
        live_server.url,
        token=make_token(
            workspace, user, ["artifact:write", "lineage:write", "privacy:release", "lineage:read"]
        ),
    )
    (tmp_path / "ages.csv").write_text("age\n" + "\n".join(str(20 + i % 50) for i in range(500)) + "\n")
    data = mlgov.upload_artifact(tmp_path / "ages.csv")
    privacy = {"unit": 1, "public_rows": 500, "bounds": {"age": [0, 100]}}
    mlgov.record_node("DatasetVersion", "ages@v1", artifact=data["id"], properties={"privacy": privacy})
    node = dataset_version_node(workspace, "ages", "v1")
    budget_set(workspace=workspace, actor=Actor(user=user), node=node, epsilon=1.0, delta=0.0)
    # The first answer says "queued" (the worker's result is not in it); the client asks again.
    asked = []
    real = mlgov.request
    mlgov.request = lambda *a, **k: asked.append(a[0]) or real(*a, **k)
    release = mlgov.dp_release("ages", "v1", "mean", column="age", epsilon=0.5)
    assert asked == ["POST", "POST"]
    assert release["state"] == "succeeded"
    assert 0 <= release["value"] <= 100
    assert PrivacyBudget.objects.get(dataset_node=node).epsilon_spent == pytest.approx(0.5)  # once
    later = mlgov.dp_release("ages", "v1", "count", epsilon=0.25, wait=False)
    assert later["state"] == "queued"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_download_is_checked_against_the_recorded_digest(live_server, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from core.models import Artifact

    user = make_user("dana")
    workspace = make_workspace("labs", admin=user)
    mlgov = Client(live_server.url, token=make_token(workspace, user, ["artifact:read", "artifact:write"]))
    here = tmp_path / "downloads"
    here.mkdir()
    source = here / "adult.csv"
    source.write_bytes(b"age,income\n39,<=50K\n50,>50K\n" * 1000)
    artifact = mlgov.upload_artifact(source)

    saved = mlgov.download_artifact(artifact["id"], here / "copy.csv")
    assert saved.read_bytes() == source.read_bytes()

    # The stored bytes changed behind the service's back: the download is refused, nothing is left.
    key = Artifact.objects.get(pk=artifact["id"]).storage_key
    default_storage.delete(key)
    assert default_storage.save(key, ContentFile(b"age,income\n39,>50K\n")) == key
    with pytest.raises(ValueError, match="SHA-256"):
        mlgov.download_artifact(artifact["id"], here / "tampered.csv")
    assert sorted(p.name for p in here.iterdir()) == ["adult.csv", "copy.csv"]
    with pytest.raises(ApiError) as missing:
        mlgov.download_artifact("00000000-0000-0000-0000-000000000000", here / "none.csv")
    assert missing.value.status == 404
    assert not (here / "none.csv").exists()


def test_an_api_error_says_each_problem_once():
    fields = [{"field": "rows", "message": "bad"}, {"field": "seed", "message": "worse"}]
    several = ApiError(
        400, {"title": "Validation failed", "detail": "rows: bad; seed: worse", "errors": fields}
    )
    assert str(several) == "400 Validation failed: rows: bad; seed: worse"
    one = [{"field": "Idempotency-Key", "message": "used before"}]
    assert str(ApiError(409, {"title": "Conflict", "detail": "used before", "errors": one})) == (
        "409 Conflict: Idempotency-Key: used before"
    )
    assert str(ApiError(404, {"title": "Not found", "detail": "no such job"})) == "404 Not found: no such job"
    # A detail and a different field error are told apart.
    card = [{"field": "content.model_details.bogus", "message": "unknown field"}]
    assert str(
        ApiError(400, {"title": "Bad request", "detail": "the card is not valid", "errors": card})
    ) == ("400 Bad request: the card is not valid; content.model_details.bogus: unknown field")


def test_an_unreachable_service_is_named_with_its_address():
    from mlgov.client import ServiceUnreachable

    with pytest.raises(
        ServiceUnreachable, match=r"cannot reach the service at http://127\.0\.0\.1:9 .*MLGOV_URL"
    ):
        Client("http://127.0.0.1:9", token="mlg_x").request("GET", "me")


def test_the_token_is_not_sent_to_another_origin_on_a_redirect():
    import http.server
    import threading

    seen: dict[str, str | None] = {}

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen[self.path] = self.headers.get("Authorization")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            return None

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirecting(Elsewhere):
        def do_GET(self):
            seen[self.path] = self.headers.get("Authorization")
            target = (
                f"http://127.0.0.1:{other.server_port}/away" if "away" in self.path else "/api/v1/here-too"
            )
            if self.path.endswith("here-too"):
                return super().do_GET()
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (origin, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{origin.server_port}", token="mlg_secret")
        client.request("GET", "same")  # redirected within the origin: the token goes along
        assert seen["/api/v1/here-too"] == "Bearer mlg_secret"
        client.request("GET", "away")  # redirected to another origin: it does not
        assert seen["/api/v1/away"] == "Bearer mlg_secret"
        assert seen["/away"] is None
    finally:
        origin.shutdown()
        other.shutdown()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_compressed_csv_and_zstd_parquet_upload_with_defaults_and_are_read(
    live_server, tmp_path, eager_celery
):
    """Data as people have it: `data.csv.gz` (the client declares text/csv, the service finds gzip
    around it) and a zstd-compressed Parquet file, each uploaded with the client's defaults and read
    by a fairness job; the reading equals the plain CSV's."""
    import gzip

    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    from tests.explain.conftest import planted_bias

    user = make_user("dana")
    workspace = make_workspace("labs", admin=user)
    scopes = ["lineage:read", "lineage:write", "artifact:write", "explain:run", "model:read"]
    mlgov = Client(live_server.url, token=make_token(workspace, user, scopes))
    frame = planted_bias(2000)
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    sio.dump(model, tmp_path / "model.skops")
    (tmp_path / "data.csv.gz").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    frame.to_parquet(tmp_path / "data.parquet", compression="zstd")
    (tmp_path / "data.csv").write_text(frame.to_csv(index=False))
    weights = mlgov.upload_artifact(tmp_path / "model.skops")
    mlgov.record_node("ModelVersion", "scorer@1", artifact=weights["id"], version_of=node("Model", "scorer"))
    found = {}
    for name in ("data.csv", "data.csv.gz", "data.parquet"):
        uploaded = mlgov.upload_artifact(tmp_path / name)
        key = f"{name.replace('.', '-')}@v1"
        mlgov.record_node("DatasetVersion", key, artifact=uploaded["id"])
        job = mlgov.wait(
            mlgov.assess_fairness(
                "scorer", "1", key, target="label", sensitive_features=["sex"], resamples=20
            ),
            timeout=60,
        )
        found[name] = (uploaded["media_type"], job["result"]["rows"], job["result"]["disparities"])
    assert found["data.csv.gz"][0] == "text/csv"
    assert found["data.parquet"][0] == "application/vnd.apache.parquet"
    assert found["data.csv.gz"][1:] == found["data.csv"][1:] == found["data.parquet"][1:]
    assert found["data.csv"][1] == 2000


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_technical_file_its_approval_and_the_audit_log_of_a_period_through_the_client(
    live_server, tmp_path
):
    from datetime import UTC, datetime, timedelta

    import skops.io as sio
    from sklearn.dummy import DummyClassifier

    from core import signing
    from core.actors import Actor
    from core.roles import Role
    from governance import services
    from mlgov.verify import verify_audit_export, verify_techfile
    from tests.explain.conftest import store_bytes
    from tests.factories import make_member

    admin = make_user("root")
    workspace = make_workspace("acme", admin=admin)
    author = make_member(workspace, Role.DATA_SCIENTIST, "alice")
    reviewer = make_member(workspace, Role.COMPLIANCE_REVIEWER, "bob")
    weights = store_bytes(workspace, author, sio.dumps(DummyClassifier().fit([[0]], [0])), "m.skops")
    services.version_register(
        workspace=workspace, actor=Actor(user=author), name="m", version="1", artifact=str(weights.pk)
    )
    key = signing.public_key_document()["public_key"]
    auditor = Client(live_server.url, token=make_token(workspace, admin, ["report:export", "audit:read"]))
    document = auditor.technical_file("m", "1")
    assert verify_techfile(document, key) == []
    assert document["techfile"]["approvals"] == []
    approving = Client(live_server.url, token=make_token(workspace, reviewer, ["approval:decide"]))
    approval = approving.approve_technical_file("m", "1", "complete enough for a test")
    assert approval["approved_by"] == "bob"
    assert auditor.technical_file("m", "1")["techfile"]["approvals"][0]["current"] is True
    now = datetime.now(UTC)
    export = auditor.audit_export((now - timedelta(hours=1)).isoformat(), now.isoformat())
    assert verify_audit_export(export, key) == []
    assert "techfile.approve" in [e["document"]["action"] for e in export["export"]["events"]]
