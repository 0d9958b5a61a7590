"""Pickle models: only the operator can allow them, the web process never unpickles one, and workers
run them only in a confined child process that can read no secret, reach no server and is stopped at
its limits.

The reproduction this closes: any signed-in user created a workspace, switched `allow_pickle_models` on
through the API and registered a pickle, which registration unpickled in the web process."""

from __future__ import annotations

import io
import os
import pickle
import re
import resource
import socket
import subprocess
import sys
import sysconfig
import time
import uuid

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from sklearn.ensemble import RandomForestClassifier

from core.models import AuditEvent, Workspace
from explain import explainers, sandbox
from explain.models import Job, JobState
from explain.sandbox import SandboxError, SandboxLimits, sandbox_run
from tests.conftest import bearer, session
from tests.explain.conftest import planted_bias, register
from tests.factories import make_token, make_user, make_workspace
from tests.workers import client_app, database_url, embedded_broker, start_worker, stop_worker

FEATURES = ["score", "sex"]
POSTGRES_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"  # trust authentication for local users
PICKLE = "application/x-pickle"


class Runs:
    """A pickle that runs `code` when it is loaded, as an attacker's would."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code, {}))


def _pickled(code: str) -> bytes:
    return pickle.dumps(Runs(code))


def _fitted(rows: int = 400):
    frame = planted_bias(rows)
    return RandomForestClassifier(8, max_depth=4, random_state=0).fit(frame[FEATURES], frame["label"]), frame


def _limits(**changes) -> SandboxLimits:
    values = {"memory_mb": 4096, "cpu_seconds": 60, "wall_seconds": 60, "open_files": 64, "file_mb": 256}
    return SandboxLimits(**{**values, **changes})


# --- the reproduction fails at every step ------------------------------------------------------------


def test_a_workspace_admin_cannot_allow_pickle_through_the_api(mallory, umbrella):
    client = session(mallory, umbrella)
    created = client.post(reverse("workspace-list"), {"slug": "mine"}, format="json")
    assert created.status_code == 201  # anyone signed in may make a workspace and be its admin
    client = session(mallory, Workspace.objects.get(slug="mine"))
    for body in ({"allow_pickle_models": True}, {"name": "Renamed", "allow_pickle_models": True}):
        response = client.patch(reverse("workspace-detail"), body, format="json")
        assert response.status_code == 400, response.content
        [error] = response.json()["errors"]
        assert error["field"] == "allow_pickle_models"
        assert "operator" in error["message"]
    workspace = Workspace.objects.get(slug="mine")
    assert (workspace.allow_pickle_models, workspace.name) == (False, "mine")
    assert not AuditEvent.objects.filter(workspace=workspace, action="workspace.update").exists()
    assert client.get(reverse("workspace-detail")).json()["allow_pickle_models"] is False  # still readable
    assert client.patch(reverse("workspace-detail"), {"name": "Mine"}, format="json").status_code == 200


def _upload(client, data: bytes) -> str:
    upload = client.post(
        reverse("artifact-list"),
        {"file": SimpleUploadedFile("model.pkl", data, content_type="application/octet-stream")},
        format="multipart",
    )
    assert upload.status_code == 201, upload.content
    assert upload.json()["media_type"] == PICKLE
    return upload.json()["id"]


def test_registering_a_pickle_needs_the_server_and_the_workspace_allowed_and_never_loads_it(
    acme, alice, settings, tmp_path
):
    """Refused (400 naming `artifact`, saying how to save a skops file) unless both are on; accepted
    then, without being unpickled: the marker its loading would write never appears."""
    client = bearer(make_token(acme, alice, ["artifact:write", "model:write"]))
    marker = tmp_path / "marker"
    artifact = _upload(client, _pickled(f"open({str(marker)!r}, 'w').write('ran')"))
    url = reverse("model-versions", kwargs={"name": "income"})
    for server, workspace in ((False, False), (True, False), (False, True)):
        settings.MODELS_ALLOW_PICKLE = server
        Workspace.objects.filter(pk=acme.pk).update(allow_pickle_models=workspace)
        response = client.post(url, {"version": "1", "artifact": artifact}, format="json")
        assert response.status_code == 400, response.content
        assert [e["field"] for e in response.json()["errors"]] == ["artifact"]
        assert "skops.io.dump" in response.json()["detail"]
        assert "operator" in response.json()["detail"]
    settings.MODELS_ALLOW_PICKLE = True
    call_command("workspace_allow_pickle", "--workspace", "acme", stdout=io.StringIO())
    response = client.post(url, {"version": "1", "artifact": artifact}, format="json")
    assert response.status_code == 201, response.content
    assert not marker.exists()


def test_the_operator_command_switches_pickle_per_workspace_and_is_audited(acme, settings, capsys):
    settings.MODELS_ALLOW_PICKLE = False
    call_command("workspace_allow_pickle", "--workspace", "acme")
    out, err = capsys.readouterr()
    assert out.strip() == "acme now accepts pickle models"
    assert "MODELS_ALLOW_PICKLE is off on this server" in err
    acme.refresh_from_db()
    assert acme.allow_pickle_models
    call_command("workspace_allow_pickle", "--workspace", "acme")  # again: nothing new to audit
    call_command("workspace_allow_pickle", "--workspace", "acme", "--off")
    acme.refresh_from_db()
    assert not acme.allow_pickle_models
    events = AuditEvent.objects.filter(workspace=acme, action="workspace.update").order_by("seq")
    assert [(e.actor, e.payload) for e in events] == [
        ("system:mlgov", {"changes": {"allow_pickle_models": True}}),
        ("system:mlgov", {"changes": {"allow_pickle_models": False}}),
    ]
    with pytest.raises(CommandError, match="no workspace 'nope'"):
        call_command("workspace_allow_pickle", "--workspace", "nope")


# --- the sandbox --------------------------------------------------------------------------------------


def test_a_pickled_model_answers_in_the_sandbox_as_it_does_here(settings):
    """One child run: the description, predictions, probabilities and SHAP values, the same numbers as
    the model gives in this process."""
    model, frame = _fitted()
    X = frame[FEATURES].to_numpy(np.float64)
    ops = [
        {"op": "describe"},
        {"op": "predict", "X": X},
        {"op": "predict_proba", "X": X},
        {"op": "shap", "X": X},
    ]
    described, predicted, proba, shap = sandbox_run(pickle.dumps(model), media_type=PICKLE, ops=ops)
    assert described == {
        "type": "sklearn.ensemble._forest.RandomForestClassifier",
        "feature_names_in": FEATURES,
        "n_features_in": 2,
        "classes": [0, 1],
        "predict_proba": True,
        "tree": True,
    }
    assert np.array_equal(predicted["arrays"]["values"], model.predict(frame[FEATURES]))
    assert np.allclose(proba["arrays"]["values"], model.predict_proba(frame[FEATURES]), rtol=0, atol=1e-15)
    here = explainers.shap_block(model, X, "cpu", cpu_tree="shap")
    assert shap["detail"] == "shap.TreeExplainer"
    assert np.max(np.abs(shap["arrays"]["values"] - here.values)) <= 1e-12
    assert np.array_equal(shap["arrays"]["output"], here.output)


def _spy(key_file, port: int, unix_path) -> str:
    """Code that tries what a malicious pickle would, and raises with what it got."""
    return f"""
import os, socket
report = []
def attempt(what, action):
    try:
        got = action()
    except Exception as error:
        report.append(f"{{what}}: nothing ({{type(error).__name__}}: {{error}})")
    else:
        report.append(f"{{what}}: GOT {{got!r}}")
attempt("signing key", lambda: open({str(key_file)!r}).read())
attempt("DATABASE_URL", lambda: os.environ["DATABASE_URL"])
attempt("worker environment", lambda: open(f"/proc/{{os.getppid()}}/environ", "rb").read())
attempt("TCP 127.0.0.1:5432", lambda: socket.create_connection(("127.0.0.1", 5432), timeout=2))
attempt("TCP 127.0.0.1:{port}", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("PostgreSQL socket", lambda: socket.socket(socket.AF_UNIX).connect({POSTGRES_SOCKET!r}))
attempt("Unix socket", lambda: socket.socket(socket.AF_UNIX).connect({str(unix_path)!r}))
"""


class Listeners:
    """A TCP and a Unix socket listening here: a sandbox that could connect would reach them."""

    def __init__(self, tmp_path) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.unix_path = tmp_path / "listener.sock"
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(str(self.unix_path))
        self.unix.listen()
        self.port = self.tcp.getsockname()[1]

    def nobody_came(self) -> bool:
        for listener in (self.tcp, self.unix):
            listener.setblocking(False)
            try:
                listener.accept()
            except BlockingIOError:
                continue
            return False
        return True

    def close(self) -> None:
        self.tcp.close()
        self.unix.close()


@pytest.fixture
def listeners(tmp_path):
    opened = Listeners(tmp_path)
    yield opened
    opened.close()


SECRET = "TOP-SECRET-SIGNING-KEY-0123456789"


def test_a_malicious_pickle_gets_nothing_in_the_sandbox(tmp_path, listeners, monkeypatch):
    key = tmp_path / "gate_signing_key"
    key.write_text(SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://owner:hunter2@db/mlgov")  # in the parent's environment
    code = (
        _spy(key, listeners.port, listeners.unix_path)
        + f"""
attempt("the service's database", lambda: open({str(tmp_path / "db.sqlite3")!r}, "w"))
attempt("a file outside its directory", lambda: open({str(tmp_path / "marker")!r}, "w"))
def shell():
    status = os.system("touch {tmp_path / "marker"}")
    if status:
        raise OSError(f"the shell did not run (status {{status >> 8}})")
    return "it ran"
attempt("a shell", shell)
attempt("a new process", lambda: os.fork())
attempt("another program", lambda: os.execv("/bin/sh", ["sh", "-c", "exit 0"]))
attempt("the worker", lambda: os.kill(os.getppid(), 0))
import resource
attempt("more memory", lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)))
raise RuntimeError("; ".join(report))
"""
    )
    with pytest.raises(SandboxError) as refused:
        sandbox_run(_pickled(code), media_type=PICKLE, ops=[{"op": "describe"}], limits=_limits())
    error = str(refused.value)
    assert error.startswith("the pickle could not be loaded in the sandbox: RuntimeError: ")
    report = dict(part.split(": ", 1) for part in error.split("RuntimeError: ", 1)[1].split("; "))
    assert "GOT" not in error
    for what, why in [
        ("signing key", "Permission denied"),
        ("DATABASE_URL", "KeyError"),
        ("worker environment", "Permission denied"),
        ("TCP 127.0.0.1:5432", "Operation not permitted"),
        (f"TCP 127.0.0.1:{listeners.port}", "Operation not permitted"),
        ("PostgreSQL socket", "Operation not permitted"),
        ("Unix socket", "Operation not permitted"),
        ("the service's database", "Permission denied"),
        ("a file outside its directory", "Permission denied"),
        ("a new process", "Operation not permitted"),
        ("another program", "Permission denied"),
        ("the worker", "Operation not permitted"),
        ("more memory", "not allowed to raise maximum limit"),
    ]:
        assert report[what].startswith("nothing ("), what
        assert why in report[what], what
    assert report["a shell"] == "nothing (OSError: the shell did not run (status 127))"  # no fork, no exec
    assert SECRET not in error
    assert "hunter2" not in error
    assert listeners.nobody_came()
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.parametrize(
    ("code", "limits", "message"),
    [
        (
            "bytearray(8 << 30)",
            {"memory_mb": 1024},
            "the model ran out of memory in the sandbox (loading the pickle; the limit is 1024 MiB",
        ),
        ("while True: pass", {"cpu_seconds": 1}, "the model used more than the sandbox's 1 s of CPU time"),
        (
            "import time; time.sleep(60)",
            {"wall_seconds": 3},
            "the model ran past the sandbox's time limit of 3 s",
        ),
    ],
    ids=["memory", "cpu", "wall-clock"],
)
def test_the_sandbox_stops_a_model_at_its_limits(code, limits, message):
    started = time.monotonic()
    with pytest.raises(SandboxError, match="^" + re.escape(message)):
        sandbox_run(_pickled(code), media_type=PICKLE, ops=[{"op": "describe"}], limits=_limits(**limits))
    assert time.monotonic() - started < 20


def test_the_child_refuses_to_run_where_a_secret_would_be_readable(monkeypatch, tmp_path):
    """The Landlock ruleset can only allow: if the service's files lay beneath a directory Python
    needs to read, the child stops before loading the pickle."""
    inside = os.path.join(sysconfig.get_paths()["purelib"], "var", "gate_signing_key")
    monkeypatch.setattr(sandbox, "_protected_paths", lambda: [inside])
    with pytest.raises(SandboxError) as refused:
        sandbox_run(
            _pickled("raise SystemExit(0)"), media_type=PICKLE, ops=[{"op": "describe"}], limits=_limits()
        )
    assert str(refused.value).startswith("the sandbox could not be set up, so the pickle was not run: ")
    assert "gate_signing_key lies beneath" in str(refused.value)


CONFINE = """
import os, resource, sys
from explain import confinement
{patch}
try:
    limits = confinement.Limits(1 << 30, 5, 32, 1 << 20)
    confinement.confine(read_only=[], read_write=["/dev/null"], limits=limits)
except confinement.ConfinementError as error:
    print("refused:", error, "| address space:", resource.getrlimit(resource.RLIMIT_AS)[0])
    sys.exit(0)
for pid in (os.getpid(), os.getppid()):
    try:
        os.kill(pid, 0)
        print("signal", "self" if pid == os.getpid() else "parent", "sent")
    except OSError as error:
        print("signal", "self" if pid == os.getpid() else "parent", "refused:", error.strerror)
"""


def _confine(patch: str) -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-c", CONFINE.format(patch=patch)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_confinement_fails_closed_where_the_kernel_lacks_what_it_needs():
    """Checked before anything changes: no limit lowered, nothing run half-confined."""
    without_landlock = _confine("confinement.landlock_abi = lambda: 0")
    assert without_landlock.startswith("refused: Landlock is not available on this kernel")
    assert without_landlock.strip().endswith(f"address space: {resource.RLIM_INFINITY}")
    other_machine = _confine("import platform; platform.machine = lambda: 'riscv64'")
    assert other_machine.startswith("refused: no seccomp filter is written for the 'riscv64' architecture")
    # Before Landlock's signal scoping (ABI 6), the seccomp filter keeps signals inside the sandbox.
    assert _confine("confinement.landlock_abi = lambda: 5").splitlines() == [
        "signal self sent",
        "signal parent refused: Operation not permitted",
    ]


# --- jobs on a real worker ------------------------------------------------------------------------------


def _wait_all(jobs: list[Job], worker, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(Job.objects.get(pk=job.pk).finished for job in jobs):
            return True
        if worker.poll() is not None:
            return False
        time.sleep(0.3)
    return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_pickle_models_run_sandboxed_on_a_real_worker(settings, tmp_path, monkeypatch, listeners):
    """With pickle allowed (server and workspace), a worker explains and assesses a pickled model in
    its sandbox with the same numbers as the same model saved with skops; a pickle that reaches for
    the signing key, the worker's database settings or the database server gets nothing, and its job
    fails saying what was refused."""
    from core.actors import SYSTEM, Actor
    from core.workspaces import workspace_allow_pickle
    from explain import selectors, services

    monkeypatch.setattr(services, "work_dispatch", lambda job: None)
    queue = f"jobs-{uuid.uuid4().hex[:6]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    user = make_user("owner")
    workspace = make_workspace("pickles", admin=user)
    workspace_allow_pickle(workspace=workspace, actor=SYSTEM, allowed=True)
    model, frame = _fitted(600)
    key = tmp_path / "gate_signing_key"
    key.write_text(SECRET)
    register(workspace, user, model, frame, name="skops")
    register(workspace, user, model, frame, name="pickled", model_bytes=pickle.dumps(model))
    spy = _spy(key, listeners.port, listeners.unix_path) + '\nraise RuntimeError("; ".join(report))\n'
    register(workspace, user, None, frame, name="spy", model_bytes=_pickled(spy))

    def job(kind: str, name: str, **params) -> Job:
        return services.job_create(
            workspace=workspace,
            actor=Actor(user=user),
            kind=kind,
            model_node=selectors.model_version_node(workspace, name, "1"),
            dataset_key="adult@v1",
            params={"features": FEATURES, "seed": 0, **params},
        )[0]

    explain = {"chunk_rows": 300, "backend": "auto"}
    assess = {"target": "label", "sensitive_features": ["sex"], "resamples": 50}
    jobs = {
        "skops": job("explanation", "skops", **explain),
        "pickled": job("explanation", "pickled", **explain),
        "skops fairness": job("fairness", "skops", **assess),
        "pickled fairness": job("fairness", "pickled", **assess),
        "spy": job("explanation", "spy", **explain),
    }
    broker = embedded_broker(tmp_path / "broker")
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.setenv(name, broker[name])
    env = {
        **broker,
        "ARTIFACT_ROOT": settings.ARTIFACT_ROOT,
        "MODELS_ALLOW_PICKLE": "1",
        "GATE_SIGNING_KEY_FILE": str(key),
        "EXPLAIN_CPU_TREESHAP": "shap",
    }
    worker = start_worker(env, [queue])
    client = client_app(broker)
    try:
        for each in jobs.values():
            client.send_task("explain.run_job", args=[str(each.pk)], queue=queue)
        finished = _wait_all(list(jobs.values()), worker, 240)
    finally:
        log = stop_worker(worker)
        client.close()
    assert finished, log[-3000:]
    for each in jobs.values():
        each.refresh_from_db()
    for name in ("skops", "pickled", "skops fairness", "pickled fairness"):
        assert jobs[name].state == JobState.SUCCEEDED, (name, jobs[name].error, log[-3000:])

    pickled, skops = jobs["pickled"], jobs["skops"]
    assert (pickled.backend, pickled.backend_detail) == ("cpu", "shap.TreeExplainer, in the pickle sandbox")
    assert pickled.chunks_total == 2

    def values(each: Job) -> np.ndarray:
        return np.load(default_storage.open(each.result_artifact.storage_key, "rb"))["shap_values"]

    assert np.max(np.abs(values(pickled) - values(skops))) <= 1e-12
    assert pickled.result["top_features"] == skops.result["top_features"]
    importance = pickled.result["importance"], skops.result["importance"]
    for feature in FEATURES:
        assert np.allclose(importance[0][feature], importance[1][feature], rtol=0, atol=1e-12)
    fair, reference = jobs["pickled fairness"].result, jobs["skops fairness"].result
    assert fair["disparities"] == reference["disparities"]
    assert fair["groups"] == reference["groups"]

    spied = jobs["spy"]
    assert spied.state == JobState.FAILED
    assert spied.error.startswith("model: the pickle could not be loaded in the sandbox: RuntimeError: ")
    assert "signing key: nothing (PermissionError: [Errno 13] Permission denied" in spied.error
    assert "DATABASE_URL: nothing (KeyError" in spied.error
    assert "worker environment: nothing (PermissionError" in spied.error
    assert "TCP 127.0.0.1:5432: nothing (PermissionError: [Errno 1] Operation not permitted)" in spied.error
    assert "PostgreSQL socket: nothing (PermissionError: [Errno 1] Operation not permitted)" in spied.error
    assert "GOT" not in spied.error
    assert SECRET not in spied.error
    assert database_url() not in spied.error
    assert listeners.nobody_came()
    assert AuditEvent.objects.filter(
        workspace=workspace, action="explanation.fail", target=f"job:{spied.pk}"
    ).exists()
