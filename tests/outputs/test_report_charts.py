"""The report's charts (test_report.py checks the page as a whole)."""


from test_report import CallsSource, call, tail_source

from callmetrics._format import duration
from callmetrics._outputs.report import build_report
from callmetrics._outputs.report_charts import histograms, short_count


def test_time_bars_give_total_time_and_share_and_sum_the_rest() -> None:
    """Without self time: total time per function, 20 bars plus an 'other' bar, labelled so."""
    calls = [call(float(i * 30 + j), 0.001 * (i + 1), f"f{i}") for i in range(25)
             for j in range(i + 1)]
    report = build_report(CallsSource(calls))
    bars = report["bars"]
    assert len(bars) == 21
    assert bars[-1].kind == "other"
    assert bars[-1].label == "5 other functions"
    assert bars[0].label == "f24"
    assert max(bar.width for bar in bars) == 100
    assert all(bar.share.endswith("%") for bar in bars)
    assert report["chart"].note.startswith("Total time per function: self time is unknown")


def test_a_sliver_of_time_reads_less_than_a_tenth_of_a_percent() -> None:
    """A microsecond function beside a one-second one is '<0.1%' of the time, never '0.1%'."""
    report = build_report(CallsSource([call(0, 1.0, "big"), call(1, 1e-6, "tiny")]))
    shares = {bar.label: bar.share for bar in report["bars"]}
    assert shares == {"big": "99.9%", "tiny": "<0.1%"}


def test_each_histogram_has_its_own_axis_and_labelled_counts() -> None:
    """A microsecond function and a second-long one each fill their own card."""
    calls = [call(i, 2e-6 * (1 + i % 5), "fast") for i in range(50)]
    calls += [call(i + 0.5, 1.0 + (i % 5) * 0.3, "slow") for i in range(30)]
    report = build_report(CallsSource(sorted(calls)))
    charts = {h.name: h for h in report["histograms"]}
    width = report["hist"]["width"] - report["hist"]["left"] - report["hist"]["right"]
    for name in ("fast", "slow"):
        chart = charts[name]
        covered = chart.bins[-1].x + chart.bins[-1].width - chart.bins[0].x
        assert covered > 0.6 * width, name
        assert next(t.label for t in chart.y_ticks) == "0"
        assert len(chart.y_ticks) >= 2
    assert all("µs" in t.label for t in charts["fast"].x_ticks)
    assert all(t.label.endswith(" s") or t.label.endswith("ms") for t in charts["slow"].x_ticks)
    assert charts["fast"].caption == "t · 50 calls"
    for chart in charts.values():
        assert sum(int(b.tip.split(": ")[1].split(" call")[0]) for b in chart.bins) in (50, 30)


def test_count_axis_labels_stay_short_for_busy_functions() -> None:
    """A function with thousands of calls per bin labels its count axis 0, 2k, 4k..."""
    calls = [call(i * 1e-4, 0.001 * (1 + i % 3), "busy") for i in range(30_000)]
    chart = build_report(CallsSource(calls))["histograms"][0]
    labels = [t.label for t in chart.y_ticks]
    assert labels[0] == "0"
    assert all(len(label) <= 4 for label in labels), labels
    assert labels[-1].endswith("k")
    assert short_count(999) == "999"
    assert short_count(1500) == "1.5k"
    assert short_count(20_000_000) == "20M"


def test_percentile_labels_never_overlap_and_merge_when_equal() -> None:
    """One call: p50, p95 and p99 are one line with one label; labels keep apart otherwise."""
    same = build_report(CallsSource([call(i, 0.05, "same") for i in range(20)]))
    one = same["histograms"][0]
    assert [label.text for label in one.labels] == ["p50/p95/p99"]
    assert one.caption == "t · 20 calls"
    many = build_report(tail_source())["histograms"]
    for chart in many:
        spans = []
        for label in chart.labels:
            w = len(label.text) * 6.6
            lo = label.x - w / 2 if label.anchor == "middle" else (
                label.x if label.anchor == "start" else label.x - w)
            spans.append((label.row, lo, lo + w))
        for a in spans:
            for b in spans:
                if a is not b and a[0] == b[0]:
                    assert a[2] <= b[1] or b[2] <= a[1]


def test_percentile_lines_sit_at_the_sketch_percentiles() -> None:
    """Each histogram's p50, p95 and p99 lines show the sketch's own percentiles."""
    source = tail_source()
    for snap in source.snapshot():
        if snap.calls < 20:
            assert histograms([snap]) == []  # too few calls to say anything
            continue
        (chart,) = histograms([snap])
        expected = [f"{label}: {duration(snap.sketch.quantile(q))}"
                    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))]
        assert [marker.tip for marker in chart.markers] == expected
