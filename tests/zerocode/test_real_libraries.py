"""Real libraries' own test suites pass under ``callmetrics run -m pytest`` as they pass plain.

The sdists of toolz and more-itertools (their tests included) are fetched from the
package index once, with ``pip download``, into a cache (``CALLMETRICS_TEST_CACHE``,
default ``~/.cache/callmetrics-tests``).  Each suite runs plain, under ``callmetrics
run --exact`` tracking the library, and under cProfile: the pytest outcome line must
be the same, and the counts of a sample of the library's functions must equal
cProfile's.  toolz's suite turns warnings into errors.  Slow (a minute or two): it
runs in the default suite; without network it skips, except under ``CI=true``.
"""

from __future__ import annotations

import os
import pstats
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from callmetrics import load

CACHE = Path(os.environ.get("CALLMETRICS_TEST_CACHE",
                            Path.home() / ".cache" / "callmetrics-tests"))
# name, version, folder of its tests (in the sdist), globs to track, sampled functions
LIBRARIES = {
    "toolz": ("1.2.0", "toolz/tests", ["toolz", "toolz.*"], ["toolz.tests*"],
              ["toolz.itertoolz.groupby", "toolz.dicttoolz.merge", "toolz.itertoolz.frequencies",
               "toolz.dicttoolz.assoc", "toolz.functoolz.compose", "toolz.itertoolz.get"]),
    "more-itertools": ("11.2.1", "tests", ["more_itertools", "more_itertools.*"], [],
                       ["more_itertools.more.chunked", "more_itertools.more.first",
                        "more_itertools.more.always_iterable", "more_itertools.recipes.take",
                        "more_itertools.more.one", "more_itertools.more.ilen"]),
}
_OUTCOME = re.compile(r"^=*\s*(\d+ (passed|failed).*) in [\d.]+s", re.MULTILINE)


def _sdist(name: str, version: str) -> Path:
    archive_name = f"{name.replace('-', '_')}-{version}"
    folder = CACHE / archive_name
    if folder.is_dir():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                              "--no-binary", ":all:", f"{name}=={version}", "-d", str(CACHE)],
                             capture_output=True, text=True, timeout=300, check=False)
    archive = CACHE / f"{archive_name}.tar.gz"
    if fetched.returncode != 0 or not archive.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"could not fetch {name} {version}: {fetched.stderr[-500:]}")
        pytest.skip(f"could not fetch {name} {version} from the package index (offline?)")
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return folder


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(cwd)}
    env.pop("CALLMETRICS_RUN_LABEL", None)
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900, check=False)


def _outcome(done: subprocess.CompletedProcess[str]) -> str:
    found = _OUTCOME.findall(done.stdout)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return str(found[-1][0])


def _profiled(stats_file: Path, name: str) -> int:
    """Calls of ``name`` (``module.function`` or ``module.Class.method``) cProfile saw."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest module prefix that is a file
        suffix = "/".join(parts[:cut]) + ".py"
        found = [value for (filename, _, function), value
                 in pstats.Stats(str(stats_file)).stats.items()  # type: ignore[attr-defined]  # pstats' table
                 if filename.endswith(suffix) and function in (parts[-1], ".".join(parts[cut:]))]
        if found:
            assert len(found) == 1, (name, found)
            return int(found[0][1])  # total calls, recursive ones included
    return 0


@pytest.mark.parametrize("library", list(LIBRARIES))
def test_a_real_suite_passes_and_counts_match_cprofile(library: str, tmp_path: Path) -> None:
    version, tests, track, exclude, sample = LIBRARIES[library]
    folder = _sdist(library, version)
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", tests]
    plain = _run(*pytest_args, cwd=folder)
    store = tmp_path / "run.db"
    tracking = [arg for glob in track for arg in ("--track", glob)]
    tracking += [arg for glob in exclude for arg in ("--exclude", glob)]
    tracked = _run("-m", "callmetrics", "run", "--exact", "--no-report", "--store", store,
                   *tracking, *pytest_args, cwd=folder)
    assert tracked.returncode == plain.returncode, tracked.stdout[-2000:] + tracked.stderr
    assert _outcome(tracked) == _outcome(plain)
    profile = tmp_path / "run.prof"
    profiled = _run("-m", "cProfile", "-o", profile, *pytest_args, cwd=folder)
    assert _outcome(profiled) == _outcome(plain)
    counts = load(store).call_counts
    compared = {name: (counts.get(name, 0), _profiled(profile, name)) for name in sample}
    assert all(ours == theirs > 0 for ours, theirs in compared.values()), compared
