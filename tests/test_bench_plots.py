"""bench's plots, checked on the figures' artists (issue 26, item 7): the win-rate labels stay inside
the axes beside their bars, and the reliability diagram draws markers at 0 and 1 whole, with the
count of each bin."""

import math

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from roboreward.bench.quality import plot_reliability, reliability_figure
from roboreward.bench.report import mean_win_rate_figure


def _renderer(fig):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def test_win_rate_labels_sit_beside_their_bars_inside_the_axes():
    names = ["reward-model", "baseline:constant-1", "base-qwen2_5_vl", "baseline:random"]
    values = [1.0, 0.5, 1 / 3, 0.0]
    results = {
        "leaderboard": names,
        "models": {n: {"mean_win_rate": v} for n, v in zip(names, values, strict=True)},
    }
    fig = mean_win_rate_figure(results)
    ax = fig.axes[0]
    renderer = _renderer(fig)
    frame = ax.get_window_extent(renderer)
    texts = ax.texts
    assert [t.get_text() for t in texts] == ["1.000", "0.500", "0.333", "0.000"]
    for text, value, bar in zip(texts, values, ax.patches, strict=True):
        box = text.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, text.get_text()  # inside the axes
        assert box.x0 >= bar.get_window_extent(renderer).x1  # right of its bar, never over it
        assert text.get_position()[0] == pytest.approx(value + 0.01)
    assert list(ax.get_xticks()) == [0, 0.25, 0.5, 0.75, 1.0]
    one = {"leaderboard": ["a"], "models": {"a": {"mean_win_rate": math.nan}}}
    assert mean_win_rate_figure(one) is None


def _calibration(counts, confidence, accuracy, ece):
    return {
        "calibration": {
            "ece": ece,
            "reliability": {"count": counts, "confidence": confidence, "accuracy": accuracy},
        }
    }


def test_reliability_markers_at_0_and_1_are_whole_and_each_bin_shows_its_count(tmp_path):
    models = {
        "tiny": _calibration(
            [0, 3, 0, 7, 12], [None, 0.3, None, 0.7, 0.95], [None, 0.0, None, 0.5, 1.0], 0.21
        ),
        "baseline:random": {"calibration": None},
    }
    fig = reliability_figure(models)
    ax = fig.axes[0]
    renderer = _renderer(fig)
    frame = ax.get_window_extent(renderer)
    line = ax.lines[1]
    assert line.get_label() == "tiny (ECE 0.210)"
    assert list(line.get_ydata()) == [0.0, 0.5, 1.0]
    # every marker (its full size, not only its centre) inside the axes
    size = line.get_markersize() * fig.dpi / 72
    for x, y in ax.transData.transform(list(zip(line.get_xdata(), line.get_ydata(), strict=True))):
        assert frame.x0 <= x - size / 2 and x + size / 2 <= frame.x1
        assert frame.y0 <= y - size / 2 and y + size / 2 <= frame.y1
    assert [t.get_text() for t in ax.texts] == ["3", "7", "12"]  # the non-empty bins' counts
    assert [t.xy for t in ax.texts] == [(0.3, 0.0), (0.7, 0.5), (0.95, 1.0)]
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1
    assert plot_reliability(tmp_path, models).read_bytes()[:4] == b"\x89PNG"
    assert reliability_figure({"baseline:random": {"calibration": None}}) is None
