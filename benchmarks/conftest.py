"""Fixtures for the benchmark suites: the native C reference and a numba-vs-C results table.

``pytest benchmarks`` (the project default adds ``--benchmark-disable``) runs every benchmark
body once as a smoke test and skips the speed assertions. ``pytest benchmarks
--benchmark-enable`` measures, asserts the targets, prints a markdown table at the end and
writes it to ``benchmarks/results.md``.
"""

import platform
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:          # `pytest` without `python -m` and emu not installed
    sys.path.insert(0, str(ROOT))

RESULTS = HERE / "results.md"


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` here (the project's ``python_files`` is pytest's default)."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


# ---------------------------------------------------------------------------------------------
# Results registry
# ---------------------------------------------------------------------------------------------


class BenchReport:
    """Named numba-vs-C results recorded by the benchmarks of one session.

    Each row: ``name``, the numba and C values (seconds, or a rate), ``ratio`` (numba/C time,
    None for a rate row), ``target`` text and whether it was ``met``.
    """

    def __init__(self):
        self.rows = []

    def ratio(self, name, numba_s, c_s, target, how=""):
        """Record a time ratio ``numba_s / c_s`` whose target is ``<= target``."""
        r = numba_s / c_s
        self.rows.append(dict(name=name, numba=_fmt_time(numba_s), c=_fmt_time(c_s),
                              ratio=f"{r:.3f}", target="-" if target is None else f"<= {target:g}",
                              met=None if target is None else r <= target, how=how))
        return r

    def rate(self, name, numba_rate, c_rate, target, unit, how=""):
        """Record a throughput (``unit`` per second) whose target for numba is ``>= target``
        (``c_rate`` None: no C reference for this one)."""
        self.rows.append(dict(name=name, numba=f"{numba_rate:.1f} {unit}/s",
                              c="-" if c_rate is None else f"{c_rate:.1f} {unit}/s", ratio="-",
                              target="-" if target is None else f">= {target:g} {unit}/s",
                              met=None if target is None else numba_rate >= target, how=how))
        return numba_rate

    def seconds(self, name, numba_s, target, how=""):
        """Record a numba-only time (no C reference) whose target is ``< target`` seconds."""
        self.rows.append(dict(name=name, numba=_fmt_time(numba_s), c="-", ratio="-",
                              target="-" if target is None else f"< {target:g} s",
                              met=None if target is None else numba_s < target, how=how))
        return numba_s

    def markdown(self):
        out = ["| name | numba | C | ratio (numba/C) | target | met? |",
               "|---|---|---|---|---|---|"]
        for r in self.rows:
            met = "-" if r["met"] is None else ("yes" if r["met"] else "**NO**")
            out.append(f"| {r['name']} | {r['numba']} | {r['c']} | {r['ratio']} | {r['target']} | "
                       f"{met} |")
        notes = [f"- {r['name']}: {r['how']}" for r in self.rows if r["how"]]
        if notes:
            out += ["", "Timing:"] + notes
        return "\n".join(out) + "\n"


def _fmt_time(s):
    for unit, f in (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if s * f >= 1:
            return f"{s * f:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


_REPORT = pytest.StashKey[BenchReport]()


def pytest_configure(config):
    config.stash[_REPORT] = BenchReport()


@pytest.fixture(scope="session")
def bench_report(request):
    """The session's :class:`BenchReport`."""
    return request.config.stash[_REPORT]


@pytest.fixture(scope="session")
def native():
    """``(ffi, lib)`` of the C reference (built once; rebuilt when its sources change)."""
    from benchmarks.native.build import load

    return load()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rep = config.stash.get(_REPORT, None)
    if rep is None or not rep.rows:
        return
    table = rep.markdown()
    terminalreporter.write_sep("=", "emu numba vs C reference")
    terminalreporter.write(table)
    import numba

    header = (f"# emu benchmarks: numba vs C reference\n\n"
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {platform.machine()}, "
              f"{platform.processor() or platform.system()}, Python {platform.python_version()}, "
              f"numba {numba.__version__}\n\n")
    RESULTS.write_text(header + table)
    terminalreporter.write_line(f"written to {RESULTS}")
