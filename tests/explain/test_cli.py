"""`mlgov explain`, `mlgov fairness` and `mlgov job` as a pipeline runs them: subprocesses against the
live test server, the jobs computed by a real `celery worker` process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid

import numpy as np
import pytest
import shap
from sklearn.ensemble import RandomForestClassifier

from explain.models import Job, JobState
from tests.conftest import mlgov
from tests.explain.conftest import planted_bias, register
from tests.factories import make_token, make_user, make_workspace
from tests.workers import start_worker, stop_worker

FEATURES = ["score", "sex"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_explain_fairness_and_job_commands(settings, live_server, tmp_path):
    queue = f"cli-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue  # where the live server sends its jobs
    settings.EXPLAIN_GPU_QUEUE = ""
    owner = make_user("owner")
    workspace = make_workspace("cli-jobs", admin=owner)
    frame = planted_bias(3000)
    model = RandomForestClassifier(25, max_depth=6, random_state=0).fit(frame[FEATURES], frame["label"])
    register(workspace, owner, model, frame)
    token = make_token(workspace, owner, ["explain:run", "model:read", "artifact:read"])
    server = {"url": live_server.url, "token": token}
    target = ["--model", "income", "--version", "1", "--dataset", "adult@v1"]
    features = ["--feature", "score", "--feature", "sex"]

    worker = start_worker({"ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT)}, [queue])
    try:
        # Asked for, followed chunk by chunk, summarised; the values saved and checked against shap.
        explained = mlgov(
            "explain",
            *target,
            *features,
            "--chunk-rows",
            "1000",
            "--values",
            "values.npz",
            "--output",
            "job.json",
            **server,
            cwd=tmp_path,
        )
        assert explained.returncode == 0, explained.stdout + explained.stderr
        out = explained.stdout
        assert re.search(r"explanation of income@1 on adult@v1: succeeded in [\d.]+ s on cpu \(", out), out
        assert "3,000 rows; additivity residual" in out
        expected_values = re.search(r"expected value ([\d.]+) \(class 0\), ([\d.]+) \(class 1\)$", out, re.M)
        assert expected_values, out
        assert sum(map(float, expected_values.groups())) == pytest.approx(1, abs=2e-4)  # probabilities
        assert "mean |SHAP| (class 1):" in out
        importance = dict(re.findall(r"^  (score|sex)\s+([\d.e-]+)$", out, flags=re.M))
        assert set(importance) == set(FEATURES)
        assert re.search(
            r"^job [0-9a-f-]{36}: explanation of income@1 on adult@v1, queued$", explained.stderr, re.M
        )
        saved = json.loads((tmp_path / "job.json").read_text())
        assert saved["state"] == "succeeded"
        assert saved["chunks_total"] == 3
        with np.load(tmp_path / "values.npz", allow_pickle=False) as stored:
            values = stored["shap_values"]
            assert list(stored["features"]) == FEATURES
        expected = np.asarray(shap.TreeExplainer(model).shap_values(frame[FEATURES].to_numpy(np.float32)))
        assert values.shape == expected.shape
        assert np.max(np.abs(values - expected)) <= 1e-5
        printed = float(importance["score"])
        assert printed == pytest.approx(np.abs(values[:, 0, 1]).mean(), rel=1e-3)
        assert not list(tmp_path.glob(".*partial"))

        # Fairness: the planted disparity (0.3) with its interval, and every group's metrics.
        fairness = [
            "fairness",
            *target,
            "--features",
            "score,sex",
            "--target",
            "label",
            "--sensitive",
            "sex",
            "--resamples",
            "100",
            "--min-group-size",
            "30",
            "--reference",
            "sex=1",
            "--idempotency-key",
            "build-7-fairness",
        ]
        assessed = mlgov(*fairness, **server, cwd=tmp_path)
        assert assessed.returncode == 0, assessed.stdout + assessed.stderr
        out = assessed.stdout
        assert "classification by sex: 3,000 rows, 100 resamples, 95% intervals" in out
        parity = re.search(r"demographic_parity_difference\s+([\d.]+)\s+\[([\d.]+), ([\d.]+)\]", out)
        assert parity, out
        value, low, high = map(float, parity.groups())
        assert low <= value <= high
        assert 0.25 < value < 0.35
        # In the same order on every database (PostgreSQL's JSON column reorders keys).
        names = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
        assert names[:5] == [
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equalized_odds_difference",
            "equalized_odds_ratio",
            "equal_opportunity_difference",
        ]
        header = next(line for line in out.splitlines() if line.strip().startswith("group"))
        assert header.split() == [
            "group",
            "size",
            "selection_rate",
            "accuracy",
            "balanced_accuracy",
            "precision",
            "recall",
            "false_positive_rate",
            "false_negative_rate",
        ]
        sizes = dict(re.findall(r"^  sex=([01])(?: \(reference\))?\s+([\d,]+)\s", out, flags=re.M))
        assert sum(int(v.replace(",", "")) for v in sizes.values()) == 3000
        assert "reference group: sex=1 (given)" in out
        assert re.search(r"^  sex=1 \(reference\)\s+[\d,]+\s", out, re.M)
        assert re.search(
            r"^data: adult@v1 \(sha256 [0-9a-f]{12}…\); 3,000 of 3,000 rows are training rows$", out, re.M
        )
        # The pipeline's step run again with its key: the same job, its result printed again.
        rerun = mlgov(*fairness, **server, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert rerun.stdout == assessed.stdout
        assert rerun.stderr.splitlines()[0].split()[1] == assessed.stderr.splitlines()[0].split()[1]
        assert Job.objects.filter(kind="fairness").count() == 1

        # Submitted without waiting, then followed by id.
        queued = mlgov("explain", *target, *features, "--rows", "200", "--no-wait", **server, cwd=tmp_path)
        assert queued.returncode == 0, queued.stderr
        job_id = queued.stdout.strip()
        assert Job.objects.filter(pk=job_id).exists()
        followed = mlgov("job", job_id, "--wait", **server, cwd=tmp_path)
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert "200 rows; additivity residual" in followed.stdout

        # A job that fails on the worker: exit 1 and the worker's reason; a refused request: exit 2.
        failed = mlgov("explain", *target, "--feature", "score", "--feature", "nope", **server, cwd=tmp_path)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "failed: " in failed.stderr
        assert "'nope'" in failed.stderr
        assert Job.objects.filter(state=JobState.FAILED).count() == 1
        refused = mlgov("explain", *target, "--rows", "0", **server, cwd=tmp_path)
        assert refused.returncode == 2
        assert "rows" in refused.stderr
        assert "400" in refused.stderr

        # Cancelled while its 300 chunks are worked through: exit 0, then the job reads cancelled
        # (exit 1); a job that has succeeded cannot be cancelled (409, exit 2).
        # Ctrl-C while waiting stops the waiting, not the job, and says how to follow or stop it.
        waiting = subprocess.Popen(
            [sys.executable, "-m", "mlgov.cli", "explain", *target, *features, "--chunk-rows", "10"],
            env={**os.environ, "MLGOV_URL": live_server.url, "MLGOV_TOKEN": token},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = waiting.stderr.readline()  # printed once the job is asked for
        long_id = re.match(r"job ([0-9a-f-]{36}): ", first)[1]
        waiting.send_signal(signal.SIGINT)
        _, rest = waiting.communicate(timeout=60)
        assert waiting.returncode == 130, first + rest
        assert "stopped waiting; the job goes on" in rest
        assert f"`mlgov job {long_id} --cancel` stops it" in rest
        assert Job.objects.get(pk=long_id).state in (JobState.QUEUED, JobState.RUNNING)
        cancelled = mlgov("job", long_id, "--cancel", **server, cwd=tmp_path)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        assert re.search(r"explanation of income@1 on adult@v1: cancelled", cancelled.stdout)
        after = mlgov("job", long_id, "--wait", **server, cwd=tmp_path)
        assert after.returncode == 1
        assert "was cancelled" in after.stderr
        listed = mlgov("jobs", "--state", "cancelled", **server, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        rows = listed.stdout.splitlines()
        assert rows[0].split() == ["id", "asked", "kind", "model", "data", "state", "backend"]
        assert [row.split()[0] for row in rows[1:]] == [long_id]
        assert "income@1  adult@v1  cancelled" in rows[1]
        fairness_jobs = mlgov("jobs", "--kind", "fairness", "--limit", "5", **server, cwd=tmp_path).stdout
        assert len(fairness_jobs.splitlines()) == 2  # the header and the one assessment
        late = mlgov("job", job_id, "--cancel", **server, cwd=tmp_path)
        assert late.returncode == 2
        assert "409" in late.stderr
        assert "already succeeded" in late.stderr
    finally:
        stop_worker(worker)
    assert Job.objects.filter(state=JobState.SUCCEEDED).count() == 3
    assert Job.objects.get(pk=long_id).state == JobState.CANCELLED
