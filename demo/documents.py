"""The demo's documents: the adult@v2 datasheet, the two model cards, and the two policies."""

from __future__ import annotations

from typing import Any

from demo import adult

POLICIES: list[dict[str, Any]] = [
    {
        "name": "staging-basics",
        "description": "What any version needs before it runs in the shadow deployment.",
        "stages": ["staging"],
        "rules": [
            {"id": "model-card", "type": "datasheet_complete", "sections": ["model_details", "intended_use"]},
            {
                "id": "lineage",
                "type": "lineage_contains",
                "kinds": ["DatasetVersion", "Commit", "Environment", "Run"],
            },
            {"id": "explained", "type": "explanation_present"},
        ],
    },
    {
        "name": "production-readiness",
        "description": "Evidence and approvals a version needs before it makes decisions about people.",
        "stages": ["production"],
        "rules": [
            {"id": "model-card", "type": "datasheet_complete"},
            {"id": "accuracy", "type": "metric_threshold", "metric": "accuracy", "min": 0.82},
            {
                "id": "equalized-odds-sex",
                "type": "fairness_bound",
                "metric": "equalized_odds_difference",
                "sensitive_feature": "sex",
                "max": 0.1,
            },
            {
                "id": "parity-sex",
                "type": "fairness_bound",
                "metric": "demographic_parity_difference",
                "sensitive_feature": "sex",
                "max": 0.15,
            },
            {
                "id": "explained",
                "type": "explanation_present",
                "forbidden_top_features": adult.SENSITIVE_FEATURES,
                "top_k": 5,
            },
            {
                "id": "lineage",
                "type": "lineage_contains",
                "kinds": ["DatasetVersion", "Commit", "Environment", "Run"],
            },
            {"id": "two-reviewers", "type": "approvals", "count": 2, "role": "compliance_reviewer"},
            {"id": "privacy-budget", "type": "dp_budget_not_exhausted", "require_budget": True},
        ],
    },
]


def adult_datasheet() -> dict[str, Any]:
    """After Gebru et al. 2021. `composition` is also filled from the DP summary by the service."""
    return {
        "motivation": {
            "purpose": "Benchmark for predicting whether a person's income exceeds $50K a year from census "
            "attributes; used here to build and govern an income classifier.",
            "creators": "Barry Becker (extraction from the 1994 Census database) and Ronny Kohavi.",
            "funding": "US Census Bureau (Current Population Survey); extraction not separately funded.",
        },
        "composition": {
            "instances": "One row per person: 12 attributes plus the income label (prepared version).",
            "count": "30,162 training rows (the original training file without rows with missing values).",
            "missing_data": "Rows with `?` in workclass, occupation or native_country were dropped "
            "(2,399 rows).",
            "confidential_data": "No direct identifiers; the data is public.",
            "sensitive_attributes": "sex and race (kept as columns for fairness assessment), age, "
            "marital status.",
        },
        "collection_process": {
            "acquisition": "Extracted from the 1994 Current Population Survey by the Census Bureau.",
            "sampling": "Rows selected with conditions on age, income, hours worked and final weight.",
            "timeframe": "1994 survey; published 1996.",
            "consent": "Collected by the Census Bureau under its survey terms; no further consent sought.",
        },
        "preprocessing": {
            "cleaning": "Rows with missing values dropped; numeric indicator columns added (married, "
            "exec_or_prof, works_private, is_male, is_white).",
            "labeling": f"{adult.LABEL} = 1 when income is >50K, else 0.",
            "raw_data_kept": "Yes: dataset version adult@v1 is the raw file, linked by DERIVED_FROM.",
        },
        "uses": {
            "prior_uses": "A standard benchmark in the fairness literature (disparities by sex and race).",
            "recommended_uses": "Teaching, benchmarks and demonstrations of governance tooling.",
            "out_of_scope_uses": "Decisions about real people: the data is from 1994 and not "
            "representative today.",
        },
        "distribution": {
            "recipients": "Public, from the UCI Machine Learning Repository.",
            "license": "CC BY 4.0 (Becker & Kohavi 1996, https://doi.org/10.24432/C5XW20).",
            "restrictions": "Attribution required.",
        },
        "maintenance": {
            "maintainer": "dana (data science team)",
            "contact": "data-science@example.org",
            "update_policy": "Frozen: new preparations become new dataset versions.",
            "retention": "Kept while any registered model version was trained on it.",
        },
    }


def model_card(version: str, registered: Any) -> dict[str, Any]:
    """After Mitchell et al. 2019; `training_data`, `evaluation_data` and `quantitative_analyses`
    are also filled by the service from lineage and fairness assessments."""
    first = version == "1"
    metrics = registered.metrics
    return {
        "model_details": {
            "name": "income-classifier",
            "version": version,
            "owners": ["dana"],
            "date": registered.created_at.date().isoformat() if hasattr(registered, "created_at") else "",
            "type": "scikit-learn RandomForestClassifier (100 trees, depth 8)",
            "license": "Apache-2.0",
            "description": registered.description,
        },
        "intended_use": {
            "primary_uses": "Demonstration: flag census records likely to earn more than $50K a year.",
            "primary_users": "Analysts studying the governance workflow.",
            "out_of_scope_uses": "Credit, hiring, housing or any decision about a real person.",
        },
        "factors": {
            "relevant_factors": ["sex", "race", "age"],
            "evaluation_factors": ["sex", "race"],
        },
        "metrics": {
            "performance_measures": [
                f"accuracy {metrics.get('accuracy')}",
                f"ROC AUC {metrics.get('roc_auc')}",
            ],
            "decision_thresholds": "0.5 on the predicted probability (the forest's majority vote).",
            "variation_approaches": "Fairness metrics with 95% bootstrap intervals (200 resamples).",
        },
        "evaluation_data": {
            "datasets": ["adult-holdout@v2"],
            "motivation": "The original Adult test file, never seen in training.",
            "preprocessing": "The same preparation as the training data (run prepare-adult-v2).",
        },
        "training_data": {
            "datasets": ["adult@v2"],
            "description": "Adult training rows without missing values"
            + ("." if first else ", reweighed so that sex and the label are independent."),
        },
        "quantitative_analyses": {
            "unitary_results": "Disparities by sex and by race: see the fairness assessments.",
            "intersectional_results": "Not assessed for this version.",
        },
        "ethical_considerations": {
            "sensitive_data": "sex and race"
            + (
                " are model features." if first else " are used only to measure disparities, not as features."
            ),
            "risks_and_harms": "Lower selection rates for women and non-white people would deny them "
            "whatever the prediction is used for.",
            "mitigations": "None: this is the baseline."
            if first
            else "Sex and race features removed; training rows reweighed (Kamiran & Calders 2012).",
        },
        "caveats_and_recommendations": {
            "caveats": "1994 data; married is a strong proxy for sex and remains a feature.",
            "recommendations": "Re-assess fairness on current data before any real use.",
        },
    }
