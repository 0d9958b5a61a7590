"""Train a model on the Adult data and take it through the whole governance path with the Python
client: check the training data against the dataset version the service holds, register the new
version with its lineage, push its model card, ask the worker for explanations and fairness
assessments, read a differentially private statistic, evaluate the production gate and request
promotion.

Run it against the demo (`scripts/up.sh` prints dana's token):

    export MLGOV_URL=http://127.0.0.1:8000 MLGOV_TOKEN=mlg_...
    .venv/bin/python examples/train_and_promote.py

Exit status: 0 when the path completed (whatever the gate decided: a new version still needs its
reviewers), 1 on an error from the service, which is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import sklearn
import skops.io as sio
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from demo import adult
from mlgov import ApiError, Client, JobFailed

MODEL_CARD = """---
subject: {{kind: model_card, name: {model}, version: "{version}"}}
model_details:
  name: {model}
  version: "{version}"
  owners: [dana]
  date: "{date}"
  type: scikit-learn GradientBoostingClassifier ({trees} trees, depth 3)
  license: Apache-2.0
  description: Gradient boosting without sex and race features, on reweighed training rows.
intended_use:
  primary_uses: "Demonstration: flag census records likely to earn more than $50K a year."
  primary_users: Analysts studying the governance workflow.
  out_of_scope_uses: Credit, hiring, housing or any decision about a real person.
factors:
  relevant_factors: [sex, race, age]
  evaluation_factors: [sex, race]
metrics:
  performance_measures: ["accuracy {accuracy}", "ROC AUC {roc_auc}"]
  decision_thresholds: 0.5 on the predicted probability.
  variation_approaches: Fairness metrics with 95% bootstrap intervals (200 resamples).
evaluation_data:
  datasets: [adult-holdout@v2]
  motivation: The original Adult test file, never seen in training.
  preprocessing: The same preparation as the training data.
training_data:
  datasets: [adult@v2]
  description: Adult training rows, reweighed so that sex and the label are independent.
quantitative_analyses:
  unitary_results: Disparities by sex and by race, from the fairness assessments.
  intersectional_results: Not assessed for this version.
ethical_considerations:
  sensitive_data: sex and race are used only to measure disparities.
  risks_and_harms: Lower selection rates for some groups would deny them what the prediction gates.
  mitigations: Sex and race features removed; reweighing (Kamiran & Calders 2012).
caveats_and_recommendations:
  caveats: 1994 data; married is a proxy for sex and remains a feature.
  recommendations: Re-assess fairness on current data before any real use.
---
Trained by examples/train_and_promote.py.
"""


def git_commit() -> str:
    """The commit this script runs from (the code that trained the model)."""
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        return subprocess.run(  # noqa: S603 (a fixed command)
            [git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="income-classifier")
    parser.add_argument("--stage", default="production")
    parser.add_argument("--trees", type=int, default=150)
    parser.add_argument("--explain-rows", type=int, default=500)
    args = parser.parse_args(argv)
    client = Client()  # MLGOV_URL, MLGOV_TOKEN

    print("1. training data: prepare the Adult file as adult@v2 was prepared, and compare")
    _, train, holdout = adult.load()
    prepared = train.to_csv(index=False).encode()
    recorded = client.find("DatasetVersion", "adult@v2")
    if recorded is None or not recorded.get("artifact"):
        print("   the service has no adult@v2 with its data: run the demo seed first", file=sys.stderr)
        return 1
    stored = client.request("GET", f"artifacts/{recorded['artifact']}")
    same = stored["sha256"] == hashlib.sha256(prepared).hexdigest()
    print(f"   adult@v2 sha256 {stored['sha256'][:16]}... {'matches' if same else 'DIFFERS from'} ours")
    if not same:
        return 1

    print(f"2. training a gradient boosting model ({args.trees} trees) on the reweighed rows")
    features = adult.BASE_FEATURES
    model = GradientBoostingClassifier(n_estimators=args.trees, max_depth=3, random_state=0)
    model.fit(
        train[features].astype(float),  # a frame: the model records its feature names
        train[adult.LABEL],
        sample_weight=adult.reweighing(train, "sex", adult.LABEL),
    )
    X, y = holdout[features].astype(float), holdout[adult.LABEL]
    metrics = {
        "accuracy": round(float(accuracy_score(y, model.predict(X))), 4),
        "roc_auc": round(float(roc_auc_score(y, model.predict_proba(X)[:, 1])), 4),
    }
    print(f"   holdout: {metrics}")

    taken = [v["version"] for v in registered_versions(client, args.model)]
    version = str(max((int(v) for v in taken if v.isdigit()), default=0) + 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.model}-{version}.skops"
        sio.dump(model, path)
        artifact = client.upload_artifact(path)
        print(f"3. registering {args.model}@{version} with its lineage (run, data, commit, environment)")
        client.register(
            args.model,
            version,
            artifact["id"],
            description="gradient boosting without sex and race, reweighed training rows",
            metrics=metrics,
            run={
                "key": f"train-{args.model}-{version}",
                "job": f"train-{args.model}",
                "properties": {"script": "examples/train_and_promote.py", "trees": args.trees},
            },
            datasets=["adult@v2"],
            commit={"key": git_commit(), "properties": {"path": "examples/train_and_promote.py"}},
            environment={
                "key": f"py{platform.python_version()}-sklearn{sklearn.__version__}",
                "properties": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
            },
        )
        card = Path(tmp) / "model_card.md"
        card.write_text(
            MODEL_CARD.format(
                model=args.model,
                version=version,
                date=artifact["created_at"][:10],
                trees=args.trees,
                **metrics,
            )
        )
        sheet = client.push_datasheet(card)
        complete = sheet["completeness"]["overall"]
        print(f"4. model card pushed: revision {sheet['revision']}, {complete:.0%} complete")

    print("5. explanations and fairness assessments (the worker computes them; waiting)")
    explanation = client.wait(
        client.explain(args.model, version, "adult-holdout@v2", features=features, rows=args.explain_rows)
    )
    result = explanation["result"]
    print(
        f"   SHAP on {explanation['backend']}: top features {', '.join(result['top_features'][:3])}; "
        f"additivity residual {result['additivity_residual']:.2e}"
    )
    for sensitive in ("sex", "race"):
        fairness = client.wait(
            client.assess_fairness(
                args.model,
                version,
                "adult-holdout@v2",
                target=adult.LABEL,
                sensitive_features=[sensitive],
                features=features,
            )
        )
        gap = fairness["result"]["disparities"]["equalized_odds_difference"]
        print(
            f"   equalized odds difference by {sensitive}: {gap['value']:.3f} "
            f"(95% interval {gap['low']:.3f} to {gap['high']:.3f})"
        )

    print("6. a differentially private statistic of the training data")
    release = client.dp_release("adult", "v2", "mean", column="hours_per_week", epsilon=0.1)
    budget = client.privacy_budget("adult", "v2")
    print(
        f"   mean hours per week ~ {release['value']:.2f} (epsilon 0.1); "
        f"budget left: epsilon {budget['epsilon_left']:.2f}"
    )

    print(f"7. the {args.stage} gate")
    decision = client.gate(args.model, version, args.stage)
    for rule in decision["statement"]["rules"]:
        print(f"   {'PASS' if rule['passed'] else 'FAIL'}  {rule['rule']}: {rule['reason']}")

    request = client.request_promotion(
        args.model, version, args.stage, comment="Gradient boosting, mitigated; trained by the example."
    )
    workspace = client.request("GET", "workspace")["slug"]
    print(f"8. promotion requested; reviewers find it at {client.url}/w/{workspace}/reviews/{request['id']}/")
    return 0


def registered_versions(client: Client, name: str) -> list[dict]:
    try:
        return client.versions(name)
    except ApiError as error:
        if error.status == 404:  # no version of this model yet
            return []
        raise


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ApiError, JobFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
