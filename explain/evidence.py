"""The typed contract for what explanation and fairness jobs found: the one place that reads a job's
stored result by key name. Everything else (gate rules, the model card's evidence, the dashboard)
reads these frozen objects, through `explain.selectors`.

The stored result is JSON (docs/explain.md, "Results", lists its fields: the API serves it as is).
Fields a hand-written or older result lacks read as empty; the worker always writes them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explain.models import Job

# By-group metrics, in the order they are shown (explain.fairness computes exactly these).
CLASSIFICATION_METRICS: tuple[str, ...] = (
    "selection_rate",
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "false_positive_rate",
    "false_negative_rate",
)
REGRESSION_METRICS: tuple[str, ...] = ("mean_absolute_error", "root_mean_squared_error", "r2")

# Between-group disparities: fairlearn's definitions for classification, and each regression
# metric's largest difference between groups. Policies' `fairness_bound` rules name one of these.
CLASSIFICATION_DISPARITIES: tuple[str, ...] = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
)
REGRESSION_DISPARITIES: tuple[str, ...] = tuple(f"{metric}_difference" for metric in REGRESSION_METRICS)
DISPARITY_METRICS: tuple[str, ...] = CLASSIFICATION_DISPARITIES + REGRESSION_DISPARITIES

# The disparity a one-line summary shows for a classification assessment.
HEADLINE_DISPARITY = "demographic_parity_difference"


def _ordered(names: Iterable[str], order: Iterable[str]) -> list[str]:
    """`names` in the order given (the result's own `order`), then any others alphabetically."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Estimate:
    """A measured value (None where it is undefined) with its bootstrap interval, when one was made."""

    value: float | None
    low: float | None = None
    high: float | None = None
    undefined: str = ""  # why the rate has no denominator in this group (its value is fairlearn's 0)
    interval_note: str = ""  # why the interval does not contain the value

    @classmethod
    def from_result(cls, item: Mapping[str, Any]) -> Estimate:
        """From a result's `{"value", "low", "high"}` (the interval is absent without resampling)."""
        return cls(
            _number(item.get("value")),
            _number(item.get("low")),
            _number(item.get("high")),
            str(item.get("undefined") or ""),
            str(item.get("interval_note") or ""),
        )

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


@dataclass(frozen=True)
class Comparison:
    """A group's metric against the reference group's: the difference and the ratio, each estimated."""

    difference: Estimate
    ratio: Estimate


@dataclass(frozen=True)
class GroupMetrics:
    """One (possibly intersectional) group: its label ("sex=Female, race=Black"), rows, positives,
    metrics, and how it compares with the reference group."""

    label: str
    size: int
    metrics: Mapping[str, Estimate]  # in the assessment's metric order
    positives: int | None = None  # rows whose actual label is the positive one (classification)
    eligible: bool = True  # has at least the assessment's min_group_size rows
    is_reference: bool = False
    versus_reference: Mapping[str, Comparison] | None = None  # per metric; None for the reference
    pairwise: Mapping[str, Estimate] | None = None  # the disparities between it and the reference


def _group(g: Mapping[str, Any], metric_names: list[str], disparity_names: list[str]) -> GroupMetrics:
    versus = g.get("versus_reference")
    pairwise = g.get("pairwise")
    return GroupMetrics(
        label=str(g["group"]),
        size=int(g.get("size", 0)),
        metrics={
            name: Estimate.from_result(g["metrics"][name])
            for name in _ordered(g.get("metrics", {}), metric_names)
        },
        positives=None if g.get("positives") is None else int(g["positives"]),
        eligible=bool(g.get("eligible", True)),
        is_reference=bool(g.get("reference", False)),
        versus_reference=(
            {
                name: Comparison(
                    Estimate.from_result(versus[name]["difference"]),
                    Estimate.from_result(versus[name]["ratio"]),
                )
                for name in _ordered(versus, metric_names)
            }
            if versus
            else None
        ),
        pairwise=(
            {name: Estimate.from_result(pairwise[name]) for name in _ordered(pairwise, disparity_names)}
            if pairwise
            else None
        ),
    )


@dataclass(frozen=True)
class DataRecord:
    """The data an assessment ran on (dataset version, file and its SHA-256), and how many of its rows
    are rows of the model's training data, proven from row fingerprints over the model's columns.
    `overlap_rows` is None when that could not be proven (`notes` says why)."""

    dataset: str
    artifact: str
    sha256: str
    training: tuple[str, ...]  # the training dataset versions it was compared with
    overlap_rows: int | None
    rows: int
    notes: tuple[str, ...]

    @classmethod
    def from_result(cls, item: Mapping[str, Any]) -> DataRecord:
        overlap = item.get("overlap") or {}
        return cls(
            dataset=str(item.get("dataset", "")),
            artifact=str(item.get("artifact", "")),
            sha256=str(item.get("sha256", "")),
            training=tuple(str(t.get("dataset", "")) for t in item.get("training") or ()),
            overlap_rows=None if item.get("overlap") is None else int(overlap.get("rows", 0)),
            rows=int(overlap.get("of", 0)),
            notes=tuple(item.get("notes") or ()),
        )

    @property
    def overlap_fraction(self) -> float | None:
        if self.overlap_rows is None:
            return None
        return self.overlap_rows / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class Bootstrap:
    """How the intervals were made: `resamples` replicates (0: no intervals) at confidence `level`."""

    resamples: int
    level: float
    seed: int
    method: str


@dataclass(frozen=True)
class FairnessAssessment:
    """A fairness assessment of a model version on a dataset version: metrics by group and the
    disparities between groups, each with its bootstrap interval."""

    job_id: str
    dataset: str  # the dataset version's key
    task: str  # "classification" or "regression"
    sensitive_features: tuple[str, ...]
    rows: int
    metric_names: tuple[str, ...]  # in the order to show them
    groups: tuple[GroupMetrics, ...]
    disparities: Mapping[str, Estimate]  # in the order to show them
    bootstrap: Bootstrap | None
    warnings: tuple[str, ...]
    figure: Mapping[str, Any] | None  # plotly figure JSON: each metric by group
    reference: str = ""  # the reference group's label
    min_group_size: int = 0  # groups with fewer rows are left out of the disparities
    excluded: tuple[tuple[str, int, str], ...] = ()  # (group, size, reason) of the groups left out
    data: DataRecord | None = None  # which data it ran on, and its overlap with the training data

    @classmethod
    def from_result(
        cls, result: Mapping[str, Any], *, job_id: str = "", dataset: str = ""
    ) -> FairnessAssessment:
        """From the JSON `explain.fairness.assess` returns (and a fairness job stores as its result)."""
        order = result.get("order") or {}
        raw_groups = result.get("groups") or []
        metric_names = _ordered(
            raw_groups[0].get("metrics", {}) if raw_groups else (),
            order.get("metrics") or CLASSIFICATION_METRICS + REGRESSION_METRICS,
        )
        raw_disparities = result.get("disparities") or {}
        disparity_names = _ordered(raw_disparities, order.get("disparities") or DISPARITY_METRICS)
        boot = result.get("bootstrap")
        return cls(
            job_id=job_id,
            dataset=dataset,
            task=str(result.get("task", "classification")),
            sensitive_features=tuple(result.get("sensitive_features") or ()),
            rows=int(result.get("rows") or 0),
            metric_names=tuple(metric_names),
            groups=tuple(_group(g, metric_names, disparity_names) for g in raw_groups),
            disparities={name: Estimate.from_result(raw_disparities[name]) for name in disparity_names},
            bootstrap=(
                Bootstrap(
                    resamples=int(boot.get("resamples", 0)),
                    level=float(boot.get("level", 0.95)),
                    seed=int(boot.get("seed", 0)),
                    method=str(boot.get("method", "")),
                )
                if boot
                else None
            ),
            warnings=tuple(result.get("warnings") or ()),
            figure=result.get("figure") or None,
            reference=str((result.get("reference") or {}).get("group", "")),
            min_group_size=int(result.get("min_group_size") or 0),
            excluded=tuple(
                (str(e["group"]), int(e.get("size", 0)), str(e.get("reason", "")))
                for e in result.get("excluded") or ()
            ),
            data=DataRecord.from_result(result["data"]) if result.get("data") else None,
        )

    @classmethod
    def from_job(cls, job: Job) -> FairnessAssessment:
        """From a finished fairness job (its dataset node should be loaded with it)."""
        return cls.from_result(job.result or {}, job_id=str(job.pk), dataset=job.dataset_node.key)

    @property
    def features_label(self) -> str:
        """The sensitive features as a reader sees them: "sex, race"."""
        return ", ".join(self.sensitive_features)

    def covers(self, feature: str) -> bool:
        """Whether `feature` is among the sensitive features the groups were formed by."""
        return feature in self.sensitive_features

    def disparity(self, name: str) -> Estimate | None:
        """The disparity `name` (one of DISPARITY_METRICS), or None where the assessment has none."""
        return self.disparities.get(name)

    @property
    def headline(self) -> tuple[str, Estimate] | None:
        """The disparity a one-line summary shows: demographic parity difference for classification,
        the first metric's difference for regression; None where nothing was measured."""
        if HEADLINE_DISPARITY in self.disparities:
            return HEADLINE_DISPARITY, self.disparities[HEADLINE_DISPARITY]
        return next(iter(self.disparities.items()), None)

    def summary(self) -> str:
        """One line: rows, features and the headline disparity with its interval."""
        by = f"{self.rows:,} rows by {self.features_label}"
        if self.headline is None:
            return by
        name, measured = self.headline
        value = f"{measured.value:.3f}" if measured.value is not None else "not measurable"
        interval = f" [{measured.low:.3f}, {measured.high:.3f}]" if measured.has_interval else ""
        return f"{by}: {name.replace('_', ' ')} {value}{interval}"

    @property
    def headline_metric(self) -> str:
        """The by-group metric a table shows first: the selection rate (what demographic parity
        compares) for classification, the first metric for regression."""
        if "selection_rate" in self.metric_names:
            return "selection_rate"
        return self.metric_names[0] if self.metric_names else ""

    def group_rows(self, metric: str) -> list[dict[str, Any]]:
        """Each group with its `metric` estimate and its difference to the reference group."""
        rows = []
        for group in self.groups:
            versus = (group.versus_reference or {}).get(metric)
            rows.append(
                {
                    "group": group,
                    "metric": group.metrics.get(metric),
                    "difference": versus.difference if versus is not None else None,
                }
            )
        return rows

    def disparity_values(self) -> dict[str, float | None]:
        """Each disparity's point estimate, by name."""
        return {name: estimate.value for name, estimate in self.disparities.items()}

    def values_by_group(self) -> dict[str, dict[str, float | None]]:
        """Each group's metrics' point estimates, by group label and metric name."""
        return {g.label: {name: e.value for name, e in g.metrics.items()} for g in self.groups}


@dataclass(frozen=True)
class Explanation:
    """SHAP explanation of a model version on a dataset version: global importance (mean |SHAP| per
    feature and output), the additivity check and the dashboard's figures."""

    job_id: str
    dataset: str  # the dataset version's key
    backend: str  # "gpu" or "cpu"
    backend_detail: str  # which implementation ran
    rows: int
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    expected_value: tuple[float, ...]
    additivity_residual: float | None  # max |sum of SHAP values + expected value - model output|
    importance: Mapping[str, tuple[float, ...]]  # per feature: mean |SHAP| for each output
    top_features: tuple[str, ...]  # most important first, for the plotted output
    plot_output: int  # the output (class) the figures and `top_features` are about
    figures: Mapping[str, Any]  # plotly figure JSON: "importance", "beeswarm"

    @classmethod
    def from_result(
        cls,
        result: Mapping[str, Any],
        *,
        job_id: str = "",
        dataset: str = "",
        backend: str = "",
        backend_detail: str = "",
    ) -> Explanation:
        """From the summary an explanation job stores as its result."""
        return cls(
            job_id=job_id,
            dataset=dataset,
            backend=backend,
            backend_detail=backend_detail,
            rows=int(result.get("rows") or 0),
            features=tuple(result.get("features") or ()),
            output_names=tuple(result.get("output_names") or ()),
            expected_value=tuple(float(v) for v in result.get("expected_value") or ()),
            additivity_residual=_number(result.get("additivity_residual")),
            importance={
                feature: tuple(float(v) for v in values)
                for feature, values in (result.get("importance") or {}).items()
            },
            top_features=tuple(result.get("top_features") or ()),
            plot_output=int(result.get("plot_output") or 0),
            figures=result.get("figures") or {},
        )

    @classmethod
    def from_job(cls, job: Job) -> Explanation:
        """From a finished explanation job (its dataset node should be loaded with it)."""
        return cls.from_result(
            job.result or {},
            job_id=str(job.pk),
            dataset=job.dataset_node.key,
            backend=job.backend,
            backend_detail=job.backend_detail,
        )

    def top(self, k: int) -> tuple[str, ...]:
        """The `k` most important features, most important first."""
        return self.top_features[:k]

    def summary(self) -> str:
        """One line: rows, the additivity residual and the three most important features."""
        residual = f"{self.additivity_residual:.1e}" if self.additivity_residual is not None else "unknown"
        return f"{self.rows:,} rows, residual {residual}; top: {', '.join(self.top(3))}"
