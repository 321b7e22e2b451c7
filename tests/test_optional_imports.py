"""Without the extras, callmetrics imports and the exporters say which extra they need."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Runs first in the child: makes prometheus_client and opentelemetry unimportable, as in
# an environment where the extras are not installed.
BLOCKER = textwrap.dedent("""
    import sys

    class Blocker:
        BLOCKED = ("prometheus_client", "opentelemetry")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
""")


def run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_callmetrics_imports_without_the_extras() -> None:
    """The package, its exporters package and the CLI parser load without either extra."""
    done = run_without_extras("""
        import json, sys
        import callmetrics, callmetrics.exporters, callmetrics._cli
        from callmetrics import Analytics
        analytics = Analytics()
        analytics.track("unit")(lambda: None)()
        callmetrics._cli.build_parser()
        loaded = [m for m in sys.modules if m.startswith(("prometheus_client", "opentelemetry"))]
        print(json.dumps({"calls": sum(analytics.call_counts.values()), "loaded": loaded}))
    """)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"calls": 1, "loaded": []}


@pytest.mark.parametrize(("module", "message"), [
    ("callmetrics.exporters.prometheus",
     ("callmetrics.exporters.prometheus needs prometheus-client: "
      "pip install 'callmetrics[prometheus]' (from a checkout: pip install '.[prometheus]')")),
    ("callmetrics.exporters.otel",
     ("callmetrics.exporters.otel needs opentelemetry-api: pip install 'callmetrics[otel]' "
      "(from a checkout: pip install '.[otel]')")),
])
def test_exporter_without_its_extra_names_the_extra(module: str, message: str) -> None:
    """Importing an exporter without its extra raises one ImportError naming the extra."""
    done = run_without_extras(f"""
        try:
            import {module}
        except ImportError as exc:
            print(type(exc).__name__, exc, sep=": ")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ImportError: {message}"


def test_serve_metrics_command_without_the_extra_says_so(tmp_path: Path) -> None:
    """`callmetrics serve-metrics` without prometheus-client exits 2 naming the extra."""
    done = run_without_extras(f"""
        import pathlib, sys
        from callmetrics._cli import main
        store = pathlib.Path({str(tmp_path)!r}) / "store.sqlite"
        store.write_bytes(b"")
        sys.exit(main(["serve-metrics", str(store), "--port", "0"]))
    """)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "callmetrics: error: callmetrics.exporters.prometheus needs prometheus-client: "
        "pip install 'callmetrics[prometheus]' (from a checkout: pip install '.[prometheus]')")
