import gzip
import hashlib
import io
import pickle
from pathlib import Path

import joblib
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from sklearn.linear_model import LogisticRegression

from core import media_types
from core.models import Artifact
from tests.conftest import bearer, session
from tests.factories import make_token

CSV_BYTES = b"age,income\n39,<=50K\n50,>50K\n"


def _parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"age": [39, 50], "income": ["<=50K", ">50K"]}), buffer)
    return buffer.getvalue()


def _model():
    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def _skops_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "model.skops"
    sio.dump(_model(), path)
    return path.read_bytes()


def _joblib_bytes(tmp_path: Path, compress: int | tuple = 0) -> bytes:
    path = tmp_path / "model.joblib"
    joblib.dump(_model(), path, compress=compress)
    return path.read_bytes()


def _files_under(root) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


@pytest.fixture
def writer(acme, alice):
    return bearer(make_token(acme, alice, ["artifact:read", "artifact:write"]))


def _upload(client, data: bytes, name="data.csv", content_type="text/csv"):
    return client.post(
        reverse("artifact-list"),
        {"file": SimpleUploadedFile(name, data, content_type=content_type)},
        format="multipart",
    )


def test_upload_computes_digest_and_downloads_the_same_bytes(writer, settings):
    response = _upload(writer, CSV_BYTES)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(CSV_BYTES).hexdigest()
    assert (body["size"], body["media_type"], body["filename"]) == (len(CSV_BYTES), "text/csv", "data.csv")
    download = writer.get(reverse("artifact-content", kwargs={"artifact_id": body["id"]}))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == CSV_BYTES
    assert download["ETag"] == f'"{body["sha256"]}"'
    assert "attachment" in download["Content-Disposition"]


def test_same_bytes_uploaded_twice_are_stored_once(writer, acme, settings):
    first = _upload(writer, CSV_BYTES, name="a.csv")
    second = _upload(writer, CSV_BYTES, name="b.csv")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Artifact.objects.filter(workspace=acme).count() == 1
    assert len(_files_under(settings.ARTIFACT_ROOT)) == 1


def test_same_bytes_in_two_workspaces_share_one_blob(writer, mallory, umbrella, settings):
    _upload(writer, CSV_BYTES)
    other = bearer(make_token(umbrella, mallory, ["artifact:write"]))
    assert _upload(other, CSV_BYTES).status_code == 201
    assert Artifact.objects.count() == 2
    assert len(_files_under(settings.ARTIFACT_ROOT)) == 1


@pytest.mark.parametrize("mode", ["multipart", "raw"])
def test_too_large_upload_gets_413_and_leaves_nothing_behind(writer, acme, settings, mode):
    settings.ARTIFACT_MAX_BYTES = 1000
    big = b"x,y\n" + b"1,2\n" * 5000
    if mode == "multipart":
        response = _upload(writer, big)
    else:
        # Under the up-front Content-Length check (which allows for multipart framing), so the
        # limit must hold while the body streams in.
        response = writer.post(reverse("artifact-list") + "?filename=big.csv", big, content_type="text/csv")
    assert response.status_code == 413, response.content
    assert response.json()["title"] == "Payload too large"
    assert Artifact.objects.filter(workspace=acme).count() == 0
    assert _files_under(settings.ARTIFACT_ROOT) == []
    assert _files_under(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_declared_length_over_the_limit_is_refused_before_reading(writer, settings):
    settings.ARTIFACT_MAX_BYTES = 1000
    response = writer.generic(
        "POST", reverse("artifact-list"), b"a,b\n", content_type="text/csv", CONTENT_LENGTH=str(10**9)
    )
    assert response.status_code == 413


def test_raw_body_upload(writer):
    response = writer.post(
        reverse("artifact-list") + "?filename=raw.parquet",
        _parquet_bytes(),
        content_type="application/vnd.apache.parquet",
    )
    assert response.status_code == 201, response.content
    assert response.json()["media_type"] == media_types.PARQUET
    assert response.json()["filename"] == "raw.parquet"


@pytest.mark.parametrize(
    ("name", "declared"),
    [("data.csv", "application/vnd.apache.parquet"), ("data.parquet", "text/csv")],
)
def test_wrong_declared_type_is_caught(writer, acme, settings, name, declared):
    data = CSV_BYTES if name.endswith(".csv") else _parquet_bytes()
    response = _upload(writer, data, name=name, content_type=declared)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "media_type"
    assert error["message"].startswith(f"declared as {declared} but the content is")
    assert Artifact.objects.filter(workspace=acme).count() == 0
    assert _files_under(settings.ARTIFACT_ROOT) == []


def test_a_pickle_sent_as_skops_says_how_to_save_a_skops_file(writer):
    response = _upload(writer, pickle.dumps(_model()), name="m.pkl", content_type=media_types.SKOPS)
    assert response.status_code == 400
    assert "save the model with skops.io.dump" in response.json()["errors"][0]["message"]


def test_media_type_query_parameter_is_checked_too(writer):
    response = writer.post(
        reverse("artifact-list") + "?media_type=application/x-skops", CSV_BYTES, content_type="text/csv"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "media_type"


def test_empty_upload_is_refused(writer):
    response = _upload(writer, b"")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "file"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: CSV_BYTES, media_types.CSV),
        (lambda tmp: b"a;b;c\n1;2;3\n4;5;6\n", media_types.CSV),
        (lambda tmp: _parquet_bytes(), media_types.PARQUET),
        (_skops_bytes, media_types.SKOPS),
        (_joblib_bytes, media_types.JOBLIB),
        (lambda tmp: _joblib_bytes(tmp, compress=3), media_types.JOBLIB),
        (lambda tmp: _joblib_bytes(tmp, compress=("gzip", 3)), media_types.JOBLIB),
        (lambda tmp: pickle.dumps({"weights": [1, 2, 3]}), media_types.PICKLE),
        (lambda tmp: gzip.compress(b"just some text"), media_types.TEXT),
        (lambda tmp: gzip.compress(CSV_BYTES * 5000), media_types.CSV),
        (lambda tmp: gzip.compress(bytes(range(256)) * 10), media_types.GZIP),
        (lambda tmp: b'{"model_card": {"name": "x"}}', media_types.JSON),
        (lambda tmp: b"just a sentence without columns\n", media_types.TEXT),
        (lambda tmp: bytes(range(256)), media_types.BINARY),
    ],
    ids=[
        "csv",
        "csv-semicolon",
        "parquet",
        "skops",
        "joblib",
        "joblib-zlib",
        "joblib-gzip",
        "pickle",
        "gzip-text",
        "gzip-csv",
        "gzip-binary",
        "json",
        "text",
        "binary",
    ],
)
def test_media_type_is_detected_from_content(tmp_path, make, expected):
    path = tmp_path / "upload.bin"
    path.write_bytes(make(tmp_path))
    assert media_types.detect(path) == expected


def test_detected_type_wins_when_nothing_is_declared(writer, tmp_path):
    response = _upload(
        writer, _skops_bytes(tmp_path), name="model.skops", content_type="application/octet-stream"
    )
    assert response.status_code == 201
    assert response.json()["media_type"] == media_types.SKOPS


def test_pickle_is_stored_but_labelled_as_such(writer):
    response = _upload(writer, pickle.dumps([1, 2]), name="m.pkl", content_type="application/octet-stream")
    assert response.status_code == 201
    assert response.json()["media_type"] == media_types.PICKLE


def test_upload_writes_one_audit_event(writer, acme):
    acme.refresh_from_db()
    before = acme.audit_head_seq
    _upload(writer, CSV_BYTES)
    _upload(writer, CSV_BYTES)  # a duplicate changes nothing, so it records nothing
    acme.refresh_from_db()
    assert acme.audit_head_seq == before + 1
    assert acme.audit_events.get(seq=before + 1).action == "artifact.create"


def test_list_filters_and_paginates(writer, tmp_path):
    _upload(writer, CSV_BYTES, name="adult.csv")
    _upload(writer, _parquet_bytes(), name="adult.parquet", content_type="application/octet-stream")
    url = reverse("artifact-list")
    assert writer.get(url).json()["count"] == 2
    assert [a["filename"] for a in writer.get(url, {"media_type": "text/csv"}).json()["results"]] == [
        "adult.csv"
    ]
    assert writer.get(url, {"page_size": 1}).json()["next"] is not None
    assert writer.get(url, {"sha256": "nothex"}).json()["errors"][0]["field"] == "sha256"


def test_reviewer_can_read_but_not_upload(acme, bob):
    client = session(bob)
    assert client.get(reverse("artifact-list")).status_code == 200
    assert _upload(client, CSV_BYTES).status_code == 403


def test_refused_multipart_uploads_leave_no_spool_behind(writer, acme, settings):
    settings.ARTIFACT_MAX_BYTES = 1000
    wrong_part = writer.post(
        reverse("artifact-list"),
        {"data": SimpleUploadedFile("d.csv", CSV_BYTES, content_type="text/csv")},
        format="multipart",
    )
    assert wrong_part.status_code == 400
    assert wrong_part.json()["errors"][0]["field"] == "file"
    small_then_big = writer.post(
        reverse("artifact-list"),
        {
            "file": [
                SimpleUploadedFile("a.csv", CSV_BYTES, content_type="text/csv"),
                SimpleUploadedFile("b.csv", b"x,y\n" + b"1,2\n" * 500, content_type="text/csv"),
            ]
        },
        format="multipart",
    )
    assert small_then_big.status_code == 413
    two = writer.post(
        reverse("artifact-list"),
        {
            "file": [
                SimpleUploadedFile("a.csv", CSV_BYTES, content_type="text/csv"),
                SimpleUploadedFile("b.csv", b"p,q\n1,2\n", content_type="text/csv"),
            ]
        },
        format="multipart",
    )
    assert two.status_code == 201  # the first part is the file; the others are dropped
    assert _files_under(settings.FILE_UPLOAD_TEMP_DIR) == []
    assert Artifact.objects.filter(workspace=acme).count() == 1


def test_filenames_lose_control_characters_and_a_failed_insert_keeps_no_blob(
    writer, acme, settings, monkeypatch
):
    response = writer.post(
        reverse("artifact-list") + "?filename=" + "a%00b%0A..%2Fc.csv", CSV_BYTES, content_type="text/csv"
    )
    assert response.status_code == 201, response.content
    assert response.json()["filename"] == "c.csv"

    from core import artifacts

    def broken_audit(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(artifacts, "audit_append", broken_audit)
    with pytest.raises(RuntimeError):
        writer.post(
            reverse("artifact-list") + "?filename=d.csv", b"other,bytes\n1,2\n", content_type="text/csv"
        )
    assert Artifact.objects.filter(workspace=acme).count() == 1
    assert len(_files_under(settings.ARTIFACT_ROOT)) == 1  # only the first upload's blob


def _refusals(acme, alice, bob):
    """(what, client, expected status) for every way an upload is refused before the view runs. A
    browser holds a CSRF cookie, so Django reads the form (and with it the upload) to look for the
    token before refusing, or before the scope check refuses."""
    from rest_framework.test import APIClient

    secret = "a" * 32

    def browser(user, *, token: bool) -> APIClient:
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(user)
        client.cookies["csrftoken"] = secret
        if token:
            client.credentials(HTTP_X_CSRFTOKEN=secret)
        return client

    return [
        ("a session without the CSRF token", browser(alice, token=False), 403),
        ("a member whose role has no artifact:write", browser(bob, token=True), 403),
        ("a token without artifact:write", bearer(make_token(acme, alice, ["artifact:read"])), 403),
        ("no credentials", APIClient(), 401),
    ]


def test_uploads_refused_for_csrf_scope_or_credentials_leave_no_spool_behind(acme, alice, bob, settings):
    part = b"age,income\n" + b"39,<=50K\n" * 5000
    for what, client, expected in _refusals(acme, alice, bob):
        multipart = client.post(
            reverse("artifact-list"),
            {"file": SimpleUploadedFile("d.csv", part, content_type="text/csv")},
            format="multipart",
        )
        assert multipart.status_code == expected, what
        assert _files_under(settings.FILE_UPLOAD_TEMP_DIR) == [], f"multipart, {what}"
        raw = client.post(reverse("artifact-list") + "?filename=d.csv", part, content_type="text/csv")
        assert raw.status_code == expected, what
        assert _files_under(settings.FILE_UPLOAD_TEMP_DIR) == [], f"raw body, {what}"
    assert not Artifact.objects.exists()


def test_answers_to_signed_in_people_and_tokens_are_not_cached(acme, alice, writer, client):
    assert writer.get(reverse("artifact-list"))["Cache-Control"] == "no-store"
    client.force_login(alice)
    assert client.get(reverse("home"))["Cache-Control"] == "no-store"
    client.logout()
    assert "Cache-Control" not in client.get(reverse("health"))  # public answers may be cached


@pytest.mark.parametrize("declared", ["text/csv", "application/gzip", "application/x-gzip", ""])
def test_a_gzip_compressed_csv_is_stored_as_csv_however_it_is_declared(writer, declared):
    body = gzip.compress(CSV_BYTES)
    response = writer.post(
        reverse("artifact-list") + "?filename=data.csv.gz",
        data=body,
        content_type=declared or "application/octet-stream",
    )
    assert response.status_code == 201, response.content
    assert response.json()["media_type"] == media_types.CSV
    refused = writer.post(
        reverse("artifact-list") + "?filename=data.gz",
        data=gzip.compress(bytes(range(256)) * 10),
        content_type="text/csv",
    )
    assert refused.status_code == 400
    assert "declared as text/csv but the content is application/gzip" in refused.json()["detail"]
