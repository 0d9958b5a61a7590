"""The `mlgov` command as a CI job runs it: a subprocess against the live test server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import skops.io as sio
from sklearn.tree import DecisionTreeClassifier

from core.actors import Actor
from core.roles import Role
from governance import services
from lineage.models import Edge, Node
from tests.conftest import mlgov
from tests.factories import make_member, make_token, make_user, make_workspace
from tests.governance.conftest import training_frame


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cli_exit_codes_and_commands(live_server, tmp_path):
    owner = make_user("owner")
    workspace = make_workspace("cli", admin=owner)
    author = make_member(workspace, Role.DATA_SCIENTIST, "dana")
    scopes = ["artifact:write", "lineage:write", "model:read", "model:write", "datasheet:write", "gate:check"]
    token = make_token(workspace, author, scopes)
    frame = training_frame()
    model = DecisionTreeClassifier(max_depth=2).fit(frame[["score", "sex"]], frame["label"])
    sio.dump(model, tmp_path / "model.skops")
    url = live_server.url

    registered = mlgov(
        "register",
        "--model",
        "scorer",
        "--version",
        "1",
        "--file",
        "model.skops",
        "--metric",
        "accuracy=0.91",
        "--run",
        "train-scorer-1",
        "--job",
        "train-scorer",
        url=url,
        token=token,
        cwd=tmp_path,
    )
    assert registered.returncode == 0, registered.stderr
    assert "registered scorer@1" in registered.stdout
    # The run is recorded as an instance of its job (lineage: Run -INSTANCE_OF-> Job).
    run = Node.objects.get(workspace=workspace, kind="Run", key="train-scorer-1")
    assert Edge.objects.filter(src=run, kind="INSTANCE_OF", dst__kind="Job", dst__key="train-scorer").exists()

    card = tmp_path / "card.md"
    card.write_text(
        "---\nsubject: {kind: model_card, name: scorer, version: '1'}\n"
        "model_details:\n  name: scorer\n  version: '1'\n---\nNotes here.\n"
    )
    pushed = mlgov("datasheet", "push", str(card), url=url, token=token, cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert "model_card of scorer@1: revision 1" in pushed.stdout
    annex = tmp_path / "annex-iv.yaml"
    annex.write_text("human_oversight:\n  measures: a loan officer reviews every score\n")
    pushed = mlgov(
        "datasheet", "push", str(annex), "--kind", "annex_iv", "--name", "scorer", "--version", "1",
        url=url, token=token, cwd=tmp_path,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert "annex_iv of scorer@1: revision 1" in pushed.stdout

    services.policy_upload(
        workspace=workspace,
        actor=Actor(user=owner),
        document={
            "name": "ci",
            "stages": ["staging", "production"],
            "rules": [
                {"id": "acc", "type": "metric_threshold", "metric": "accuracy", "min": 0.8},
                {
                    "id": "card",
                    "type": "datasheet_complete",
                    "sections": ["model_details"],
                    "min_completeness": 0.25,
                },
            ],
        },
    )
    passed = mlgov(
        "gate",
        "--model",
        "scorer",
        "--version",
        "1",
        "--stage",
        "staging",
        "--output",
        "d.json",
        url=url,
        token=token,
        cwd=tmp_path,
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS  ci/acc" in passed.stdout

    services.policy_upload(
        workspace=workspace,
        actor=Actor(user=owner),
        document={
            "name": "ci",
            "stages": ["staging"],
            "rules": [{"id": "acc", "type": "metric_threshold", "metric": "accuracy", "min": 0.95}],
        },
    )
    failed = mlgov(
        "gate",
        "--model",
        "scorer",
        "--version",
        "1",
        "--stage",
        "staging",
        url=url,
        token=token,
        cwd=tmp_path,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL  ci/acc (metric_threshold): accuracy is 0.91, below the minimum 0.95" in failed.stdout

    bad_token = mlgov(
        "gate",
        "--model",
        "scorer",
        "--version",
        "1",
        "--stage",
        "staging",
        url=url,
        token="mlg_not_a_real_token",
        cwd=tmp_path,
    )
    assert bad_token.returncode == 2
    assert "401" in bad_token.stderr
    unreachable = mlgov(
        "gate",
        "--model",
        "scorer",
        "--version",
        "1",
        "--stage",
        "staging",
        url="http://127.0.0.1:9",
        token=token,
        cwd=tmp_path,
    )
    assert unreachable.returncode == 2
    assert "error: cannot reach the service at http://127.0.0.1:9" in unreachable.stderr
    bad_metric = mlgov(
        "register",
        "--model",
        "m",
        "--version",
        "1",
        "--file",
        "x",
        "--metric",
        "accuracy",
        url=url,
        token=token,
        cwd=tmp_path,
    )
    assert bad_metric.returncode == 2
    assert "'accuracy': give a metric as name=number" in bad_metric.stderr

    # The saved decision verifies offline with the public key, and fails once touched.
    key = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import json,urllib.request,sys;"
                f"print(urllib.request.urlopen('{url}/api/v1/gate/public-key').read().decode())",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    (tmp_path / "key.json").write_text(json.dumps(key))
    valid = mlgov(
        "verify-decision",
        "d.json",
        "--public-key",
        "key.json",
        url="http://127.0.0.1:9",
        token="",
        cwd=tmp_path,
    )
    assert valid.returncode == 0, valid.stderr
    assert f"valid: {workspace.slug}/scorer@1 -> staging: passed" in valid.stdout

    def verify(name: str, *expect: str):
        return mlgov(
            "verify-decision",
            name,
            "--public-key",
            "key.json",
            *expect,
            url="http://127.0.0.1:9",
            token="",
            cwd=tmp_path,
        )

    # It must be about what the deploy is about.
    sha = json.loads((tmp_path / "d.json").read_text())["statement"]["artifact_sha256"]
    meant = ("--workspace", workspace.slug, "--model", "scorer", "--version", "1", "--stage", "staging")
    assert verify("d.json", *meant, "--sha256", sha).returncode == 0
    elsewhere = verify("d.json", "--stage", "production")
    assert elsewhere.returncode == 1
    assert "INVALID: the decision is for stage 'staging', not 'production'" in elsewhere.stderr
    assert verify("d.json", "--workspace", "other").returncode == 1
    assert verify("d.json", "--sha256", "0" * 64).returncode == 1
    # Unsigned copies of signed fields cannot be edited to say something else.
    edited = json.loads((tmp_path / "d.json").read_text())
    edited["passed"] = not edited["statement"]["passed"]
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    outside = verify("edited.json")
    assert outside.returncode == 1
    assert "'passed' outside the signed statement says False" in outside.stderr
    saved = json.loads((tmp_path / "d.json").read_text())
    saved["statement"]["stage"] = "production"
    (tmp_path / "forged.json").write_text(json.dumps(saved))
    forged = mlgov(
        "verify-decision",
        "forged.json",
        "--public-key",
        "key.json",
        url="http://127.0.0.1:9",
        token="",
        cwd=tmp_path,
    )
    assert forged.returncode == 1
