"""Exact path-dependent TreeSHAP over root-to-leaf paths (the formulation GPUTreeShap uses).

A tree ensemble is flattened once into its root-to-leaf paths. Each path is a list of elements:
a bias element first, then one element per distinct feature split on along the path, holding the
interval of that feature's values that follow the path (`lower < x <= upper`, splits on the same
feature merged) and the path's "zero fraction" for it (the share of training cover that follows the
path's branch, multiplied over merged splits). For one row and one path, the SHAP contribution of
each element's feature is the path's leaf value times a weight computed from the elements by the
classic EXTEND / UNWOUND-SUM recurrences of Lundberg et al. (2020); summing over all (row, path)
pairs gives the SHAP matrix. Every pair is independent, which is what the CUDA kernel
(`explain/kernels/treeshap.cu`) parallelises. `reference_shap_values` below is the same algorithm in
NumPy, vectorised over rows and over paths of equal length; CI checks it against
`shap.TreeExplainer`.

Supported models: scikit-learn DecisionTree{Regressor,Classifier}, RandomForest*, ExtraTrees*,
GradientBoosting*, HistGradientBoosting* (numeric splits; regressors with an identity link). Outputs
follow `shap.TreeExplainer`: class probabilities for trees and forests that classify, raw log-odds
(one output for two classes) for gradient boosting classifiers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

MAX_PATH_LENGTH = 64  # elements per path, bias included; the CUDA kernel's fixed local arrays


class UnsupportedModel(ValueError):
    pass


@dataclass
class PathSet:
    """All root-to-leaf paths of an ensemble, elements stored contiguously (CSR style)."""

    path_start: np.ndarray  # int64 (n_paths + 1,): element offsets
    feature: np.ndarray  # int32 (n_elements,): -1 for the bias element
    lower: np.ndarray  # float64 (n_elements,)
    upper: np.ndarray  # float64 (n_elements,)
    zero: np.ndarray  # float64 (n_elements,): zero fraction
    values: np.ndarray  # float64 (n_paths, n_outputs): leaf value, already scaled for the ensemble
    base_offset: np.ndarray  # float64 (n_outputs,): added to the expected value (boosting's init)
    n_features: int
    model_type: str
    float32_input: bool = True  # scikit-learn's trees compare float32 inputs; HistGradientBoosting float64

    def prepare(self, X) -> np.ndarray:
        """Rows as the model compares them with its thresholds, in float64."""
        return as_model_input(X, float32=self.float32_input)

    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """path_start, feature, lower, upper, zero, values: contiguous, in the types and order the
        compiled paths (the CUDA kernel, its host build, the Numba build) take them. Values hold the
        first `kernel_outputs` outputs only; `complete` derives the rest. Made once per PathSet."""
        return self._kernel_arrays

    @functools.cached_property
    def _kernel_arrays(self) -> tuple[np.ndarray, ...]:
        return (
            np.ascontiguousarray(self.path_start, dtype=np.int64),
            np.ascontiguousarray(self.feature, dtype=np.int32),
            np.ascontiguousarray(self.lower, dtype=np.float64),
            np.ascontiguousarray(self.upper, dtype=np.float64),
            np.ascontiguousarray(self.zero, dtype=np.float64),
            np.ascontiguousarray(self.values[:, : self.kernel_outputs], dtype=np.float64),
        )

    @functools.cached_property
    def outputs_sum_to_constant(self) -> bool:
        """Every path's outputs add up to the same number (class probabilities: each leaf's add up
        to the tree's weight in the forest). Then the outputs' SHAP values add up to those of a
        constant, zero, so the last output's values are minus the sum of the others'."""
        if self.n_outputs < 2 or self.n_paths == 0:
            return False
        sums = self.values.sum(axis=1)
        return bool(np.all(np.abs(sums - sums[0]) <= 1e-12 * max(abs(float(sums[0])), 1e-300)))

    @property
    def kernel_outputs(self) -> int:
        """The outputs the compiled paths compute: all but the last where it follows from the others."""
        return self.n_outputs - 1 if self.outputs_sum_to_constant else self.n_outputs

    def complete(self, phi, xp=np):
        """SHAP values (rows, features, kernel_outputs) -> (rows, features, n_outputs), appending the
        derived last output where there is one. `xp`: the array module (NumPy, or CuPy on a GPU)."""
        if self.kernel_outputs == self.n_outputs:
            return phi
        return xp.concatenate([phi, -phi.sum(axis=2, keepdims=True)], axis=2)

    def unpack(self, phi, xp=np):
        """The kernel's output-major phi (features * kernel_outputs, rows) as SHAP values (rows,
        features, n_outputs)."""
        rows = phi.shape[1]
        return self.complete(phi.reshape(self.n_features, self.kernel_outputs, rows).transpose(2, 0, 1), xp)

    @property
    def n_paths(self) -> int:
        return len(self.path_start) - 1

    @property
    def n_outputs(self) -> int:
        return self.values.shape[1]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.path_start)

    def expected_value(self) -> np.ndarray:
        """Mean model output over the training cover: sum of leaf values times their cover share."""
        cover = np.ones(self.n_paths)
        for p in range(self.n_paths):
            cover[p] = np.prod(self.zero[self.path_start[p] : self.path_start[p + 1]])
        return self.base_offset + cover @ self.values

    def flops_per_row(self) -> int:
        """Floating-point operations per row of the path algorithm (as the kernel does them):
        EXTEND costs about 5 per (element, earlier element), UNWOUND-SUM about 6 per (element, element),
        and the accumulation 2 per computed output and element."""
        lengths = self.lengths.astype(np.int64)
        return int(
            np.sum(
                5 * lengths * (lengths - 1) // 2 + 6 * lengths * lengths + 2 * lengths * self.kernel_outputs
            )
        )


def _tree_paths(tree, scale: np.ndarray | float, *, normalise: bool, output: int | None):
    """Yield (elements, leaf value) for every leaf of a fitted sklearn `tree_`.
    elements: list of [feature, lower, upper, zero]."""
    left, right = tree.children_left, tree.children_right
    feature, threshold = tree.feature, tree.threshold
    cover = tree.weighted_n_node_samples
    value = tree.value  # (nodes, n_outputs, n_classes)
    stack: list[tuple[int, list[list]]] = [(0, [[-1, -np.inf, np.inf, 1.0]])]
    while stack:
        node, elements = stack.pop()
        if left[node] == -1:
            v = value[node]
            if normalise:
                leaf = v[0] / v[0].sum()
            elif output is None:
                leaf = v[:, 0]
            else:  # a boosting stage's regression tree: one output, placed in column `output` later
                leaf = v[0:1, 0]
            yield elements, np.asarray(leaf, dtype=np.float64) * scale
            continue
        f, t = int(feature[node]), float(threshold[node])
        for child, lo, hi in ((left[node], -np.inf, t), (right[node], t, np.inf)):
            zero = cover[child] / cover[node] if cover[node] > 0 else 0.0
            merged = [list(e) for e in elements]
            for e in merged:
                if e[0] == f:
                    e[1], e[2], e[3] = max(e[1], lo), min(e[2], hi), e[3] * zero
                    break
            else:
                merged.append([f, lo, hi, zero])
            stack.append((int(child), merged))


class _HistTree:
    """One tree of a HistGradientBoosting model (a predictor's node records) seen as a scikit-learn
    `tree_`: numeric splits `x <= threshold` go left, cover is the training sample count, leaf values
    already include the learning rate."""

    def __init__(self, predictor) -> None:
        nodes = predictor.nodes
        if "is_categorical" in nodes.dtype.names and nodes["is_categorical"].any():
            raise UnsupportedModel("TreeSHAP paths do not cover HistGradientBoosting's categorical splits")
        leaf = nodes["is_leaf"].astype(bool)
        self.children_left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        self.children_right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        self.feature = nodes["feature_idx"].astype(np.int64)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.weighted_n_node_samples = nodes["count"].astype(np.float64)
        self.value = nodes["value"].astype(np.float64).reshape(-1, 1, 1)


IDENTITY_LINK_LOSSES = ("squared_error", "absolute_error", "quantile")


def _hist_estimators(model) -> tuple[list[tuple[object, int | None]], int]:
    if isinstance(model, HistGradientBoostingRegressor) and model.loss not in IDENTITY_LINK_LOSSES:
        raise UnsupportedModel(
            f"TreeSHAP paths explain HistGradientBoostingRegressor with an identity link "
            f"({', '.join(IDENTITY_LINK_LOSSES)}), not loss={model.loss!r}"
        )
    k = int(model.n_trees_per_iteration_)
    return [(_HistTree(stage[j]), j) for stage in model._predictors for j in range(k)], k


def _estimators(model) -> tuple[str, list[tuple[object, int | None]], float, bool, int]:
    """(model type, [(tree_, output column or None)], scale, classifier-normalise, n_outputs)."""
    name = type(model).__name__
    if isinstance(model, DecisionTreeClassifier):
        return name, [(model.tree_, None)], 1.0, True, int(model.tree_.value.shape[2])
    if isinstance(model, DecisionTreeRegressor):
        return name, [(model.tree_, None)], 1.0, False, int(model.tree_.value.shape[1])
    if isinstance(model, (RandomForestClassifier, ExtraTreesClassifier)):
        trees = [(t.tree_, None) for t in model.estimators_]
        return name, trees, 1.0 / len(trees), True, int(model.estimators_[0].tree_.value.shape[2])
    if isinstance(model, (RandomForestRegressor, ExtraTreesRegressor)):
        trees = [(t.tree_, None) for t in model.estimators_]
        return name, trees, 1.0 / len(trees), False, int(model.estimators_[0].tree_.value.shape[1])
    if isinstance(model, (GradientBoostingRegressor, GradientBoostingClassifier)):
        stages = model.estimators_  # (n_stages, K) regression trees
        k = stages.shape[1]
        trees = [(stages[i, j].tree_, j) for i in range(stages.shape[0]) for j in range(k)]
        return name, trees, float(model.learning_rate), False, k
    if isinstance(model, (HistGradientBoostingRegressor, HistGradientBoostingClassifier)):
        trees, k = _hist_estimators(model)
        return name, trees, 1.0, False, k
    raise UnsupportedModel(f"TreeSHAP paths are not implemented for {name}")


def _is_hist(model) -> bool:
    return isinstance(model, (HistGradientBoostingClassifier, HistGradientBoostingRegressor))


def _raw_output(model, X: np.ndarray) -> np.ndarray:
    """The output SHAP values add up to, shaped (rows, outputs)."""
    if isinstance(model, (GradientBoostingClassifier, HistGradientBoostingClassifier)):
        raw = model.decision_function(X)
    elif hasattr(model, "predict_proba"):
        raw = model.predict_proba(X)
    else:
        raw = model.predict(X)
    raw = np.asarray(raw, dtype=np.float64)
    return raw.reshape(len(X), -1)


def model_input(model, X) -> np.ndarray:
    """Rows as `model` compares them with its thresholds, in float64."""
    return as_model_input(X, float32=not _is_hist(model))


def model_output(model, X) -> np.ndarray:
    return _raw_output(model, model_input(model, X))


def as_model_input(X, *, float32: bool = True) -> np.ndarray:
    """scikit-learn's trees compare float32 inputs with their thresholds (HistGradientBoosting
    compares float64); so do the paths."""
    if float32:
        return np.asarray(X, dtype=np.float32).astype(np.float64)
    return np.asarray(X, dtype=np.float64)


def flatten(model) -> PathSet:
    """Flatten a fitted ensemble into its root-to-leaf paths (once per model)."""
    model_type, trees, scale, normalise, n_outputs = _estimators(model)
    starts, feats, lows, highs, zeros, values = [0], [], [], [], [], []
    for tree, column in trees:
        for elements, leaf in _tree_paths(tree, scale, normalise=normalise, output=column):
            if len(elements) > MAX_PATH_LENGTH:
                raise UnsupportedModel(
                    f"a path splits on {len(elements) - 1} distinct features; "
                    f"the limit is {MAX_PATH_LENGTH - 1}"
                )
            for f, lo, hi, z in elements:
                feats.append(f)
                lows.append(lo)
                highs.append(hi)
                zeros.append(z)
            starts.append(len(feats))
            if column is None:
                values.append(leaf)
            else:  # a boosting stage's tree feeds one output
                row = np.zeros(n_outputs)
                row[column] = leaf[0]
                values.append(row)
    n_features = int(model.n_features_in_)
    paths = PathSet(
        path_start=np.asarray(starts, dtype=np.int64),
        feature=np.asarray(feats, dtype=np.int32),
        lower=np.asarray(lows, dtype=np.float64),
        upper=np.asarray(highs, dtype=np.float64),
        zero=np.asarray(zeros, dtype=np.float64),
        values=np.asarray(values, dtype=np.float64).reshape(len(starts) - 1, n_outputs),
        base_offset=np.zeros(n_outputs),
        n_features=n_features,
        model_type=model_type,
        float32_input=not _is_hist(model),
    )
    if "GradientBoosting" in model_type:
        # The initial estimator's raw prediction is a constant: what the trees do not explain.
        probe = np.zeros((1, n_features))
        trees_sum = _paths_predict(paths, probe)
        paths.base_offset = _raw_output(model, probe)[0] - trees_sum[0]
    return paths


def _paths_predict(paths: PathSet, X: np.ndarray) -> np.ndarray:
    """Sum of leaf values of the paths each row follows (the ensemble's output without its offset)."""
    out = np.zeros((len(X), paths.n_outputs))
    for p in range(paths.n_paths):
        s, e = paths.path_start[p], paths.path_start[p + 1]
        f = paths.feature[s + 1 : e]
        x = X[:, f]
        follows = np.all((x > paths.lower[s + 1 : e]) & (x <= paths.upper[s + 1 : e]), axis=1)
        out[follows] += paths.values[p]
    return out


def _groups(paths: PathSet) -> dict[int, np.ndarray]:
    """Path indices by length, so each group is a dense (paths, length) block."""
    lengths = paths.lengths
    return {int(n): np.flatnonzero(lengths == n) for n in np.unique(lengths)}


def reference_shap_values(paths: PathSet, X, *, max_block: int = 4_000_000) -> np.ndarray:
    """SHAP values of every row, shaped (rows, features, outputs). NumPy, exact, in float64."""
    X = paths.prepare(X)
    n_rows = len(X)
    F, K = paths.n_features, paths.n_outputs
    phi = np.zeros((n_rows, F * K))
    for length, members in _groups(paths).items():
        if length < 2:
            continue  # a single-leaf tree only moves the expected value
        index = paths.path_start[members][:, None] + np.arange(length)[None, :]  # (P, L)
        feat, lo, hi, zero = (paths.feature[index], paths.lower[index], paths.upper[index], paths.zero[index])
        values = paths.values[members]  # (P, K)
        n_paths = len(members)
        # One scatter matrix per element position: contribution (rows, P) @ M -> (rows, F*K).
        scatter = []
        for e in range(1, length):
            cols = (feat[:, e, None] * K + np.arange(K)[None, :]).ravel()
            rows = np.repeat(np.arange(n_paths), K)
            scatter.append(sparse.csr_matrix((values.ravel(), (rows, cols)), shape=(n_paths, F * K)))
        block = max(1, max_block // (n_paths * length))
        for start in range(0, n_rows, block):
            x = X[start : start + block]
            phi[start : start + block] += _block(x, feat, lo, hi, zero, scatter)
    return phi.reshape(n_rows, F, K)


def _block(x, feat, lo, hi, zero, scatter) -> np.ndarray:
    """Contributions of one block of rows to every path of one length."""
    length = feat.shape[1]
    depth = length - 1  # unique depth once every element is extended
    gathered = x[:, feat[:, 1:]]  # (r, P, L-1); the bias element always follows
    one = np.ones((x.shape[0], feat.shape[0], length))
    one[:, :, 1:] = (gathered > lo[None, :, 1:]) & (gathered <= hi[None, :, 1:])
    zero_b = np.broadcast_to(zero[None], one.shape)
    # EXTEND every element in turn; pw[i] is the weight of subsets of size i.
    pw = [np.ones(one.shape[:2])] + [np.zeros(one.shape[:2]) for _ in range(depth)]
    for d in range(1, length):
        o, z = one[:, :, d], zero_b[:, :, d]
        for i in range(d - 1, -1, -1):
            pw[i + 1] = pw[i + 1] + o * pw[i] * ((i + 1) / (d + 1))
            pw[i] = z * pw[i] * ((d - i) / (d + 1))
    out = None
    for e in range(1, length):
        o, z = one[:, :, e], zero_b[:, :, e]
        # UNWOUND-SUM of element e: undo its EXTEND and sum the remaining weights.
        follows = o != 0
        total = np.zeros(one.shape[:2])
        next_one = pw[depth].copy()
        safe_z = np.where(z == 0, 1.0, z)
        for i in range(depth - 1, -1, -1):
            tmp = next_one * ((depth + 1) / (i + 1))
            with_one = tmp
            with_zero = pw[i] / safe_z * ((depth + 1) / (depth - i))
            total += np.where(follows, with_one, with_zero)
            next_one = pw[i] - tmp * z * ((depth - i) / (depth + 1))
        contribution = total * (o - z)
        part = np.asarray(scatter[e - 1].T @ contribution.T).T
        out = part if out is None else out + part
    return out
