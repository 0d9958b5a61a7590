"""The explanation figures: the beeswarm is coloured as shap colours it (red for a high feature
value, blue for a low one), each feature scaled between its 5th and 95th percentiles."""

from __future__ import annotations

import numpy as np
import pytest

from explain.explainers import colour_scale, figures


def _beeswarm(column: np.ndarray) -> dict[float, float]:
    """Feature value -> colour, for a one-feature beeswarm whose SHAP value is the feature value."""
    values = column.reshape(-1, 1, 1)
    trace = figures(values, column.reshape(-1, 1), ["income"], 0)["beeswarm"]["data"][0]
    return {
        float(text.split("=")[1]): colour
        for text, colour in zip(trace["text"], trace["marker"]["color"], strict=True)
    }


def test_high_feature_values_are_red_and_low_ones_blue():
    figure = figures(np.zeros((3, 1, 1)), np.array([[0.0], [1.0], [2.0]]), ["age"], 0)["beeswarm"]
    marker = figure["data"][0]["marker"]
    low, high = marker["colorscale"][0], marker["colorscale"][-1]
    assert low[0] == 0.0
    assert high[0] == 1.0
    red, blue = high[1], low[1]
    assert int(red[1:3], 16) > int(red[5:7], 16)  # more red than blue at the top of the scale
    assert int(blue[5:7], 16) > int(blue[1:3], 16)  # more blue than red at the bottom
    assert "reversescale" not in marker
    assert (marker["cmin"], marker["cmax"]) == (0.0, 1.0)
    assert marker["colorbar"]["title"]["text"] == "feature value (low → high)"
    colours = _beeswarm(np.array([0.0, 1.0, 2.0]))
    assert colours[2.0] > colours[1.0] > colours[0.0]


def test_an_outlier_does_not_wash_out_the_other_colours():
    rng = np.random.default_rng(0)
    column = np.append(rng.uniform(0, 1, 199), 1000.0)
    colours = _beeswarm(column)
    assert colours[1000.0] == 1.0  # clipped at the 95th percentile
    ordinary = [c for value, c in colours.items() if value < 1]
    # Min-max scaling would put every ordinary value below 0.001; percentiles spread them out.
    assert min(ordinary) == 0.0
    assert np.median(ordinary) == pytest.approx(0.5, abs=0.1)
    assert max(ordinary) == 1.0  # values above the 95th percentile are clipped too


def test_a_feature_that_is_nearly_constant_still_shows_its_rare_values():
    column = np.array([0.0] * 98 + [1.0, 5.0])
    scaled = colour_scale(column)
    assert scaled[:98].tolist() == [0.0] * 98
    assert scaled[-1] == 1.0  # the 5th and 95th percentiles coincide: the 1st and 99th are used
    assert colour_scale(np.array([3.0, 3.0])).tolist() == [0.5, 0.5]
    assert colour_scale(np.array([np.nan, 0.0, 1.0])).tolist() == [0.5, 0.0, 1.0]
