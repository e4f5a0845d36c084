"""Test-wide settings: the notebooks that nbval runs execute in the toy profile, offline.

Set here rather than in the test command so that `python -m pytest` alone does the right thing on
any machine. The kernels nbval starts inherit this environment.

Three more things happen here:
- Ctrl-C is made KeyboardInterrupt again if the shell that started the run ignored it;
- a notebook that nbval ran through without a failure is written, with its outputs and the seconds
  each cell took, to ``outputs/notebooks/`` (as ``tools/notebooks.py execute`` does), so that the slides
  and the site (``tools/course_site.py``) are built from the run the tests just checked, not a second one;
- tests marked ``site`` (they build the slides and the site and open them in a browser) run last, after
  nbval has executed the notebooks;
- under pytest-xdist (the README's test command runs two workers), every notebook, every solutions
  notebook and ``tests/test_site.py`` go to one worker, which runs them in the order above, while the
  other tests are shared out one by one.
"""

import os
import signal
from pathlib import Path

import matplotlib
import pytest

os.environ.setdefault("NLP_COURSE_PROFILE", "toy")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one CPU thread per process (this one, the kernels, the training runs the tests start). torch's OpenMP
# threads spin while they wait for each other, so beside another busy program a 2-thread run of these tiny
# models crawls: on a 2-core machine with one busy loop beside it, nbval on notebook 05 took over 240 s
# with torch's default 2 threads and 56 s with one (52 s and 59 s with the machine to itself)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# plots: Agg in this process; the kernels nbval starts keep ipykernel's inline backend, so that the executed
# notebooks written below carry their plots, as a learner's do
matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent

# Ctrl-C is KeyboardInterrupt here and in every process the tests start, even when the run itself was
# started in the background by a shell that ignores SIGINT there (children would inherit the ignoring,
# and the tests that press Ctrl-C on a training run would see nothing happen)
signal.signal(signal.SIGINT, signal.default_int_handler)

_runs: dict[str, dict] = {}  # notebook path -> {"cells": [(item, seconds, passed)], "last": nodeid}


def pytest_configure(config):
    config.addinivalue_line("markers", "site: builds the slides and the site and opens them in a browser; runs last")


def pytest_collection_modifyitems(session, config, items):
    for item in items:  # the last cell of each notebook nbval runs from notebooks/
        if hasattr(item, "cell_num") and Path(str(item.fspath)).parent == ROOT / "notebooks":
            _runs[str(item.fspath)] = {"cells": [], "last": item.nodeid}
    items.sort(key=lambda item: item.get_closest_marker("site") is not None)  # stable: only moves those to the end


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    run = _runs.get(str(item.fspath)) if hasattr(item, "cell_num") else None
    if run is None or report.when != "call":
        return
    run["cells"].append((item, report.duration, report.passed))
    if item.nodeid == run["last"] and all(passed for _, _, passed in run["cells"]):
        from tools.notebooks import write_executed

        write_executed(Path(str(item.fspath)), item.parent.nb,
                       {id(cell_item.cell): (cell_item.test_outputs or [], seconds) for cell_item, seconds, _ in run["cells"]},
                       executed_by="nbval")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: without it installed (or with -p no:xdist) never called
def pytest_xdist_make_scheduler(config, log):
    """With ``-n``: the notebooks, the solutions and the site checks as one unit of work, each other test as one.

    A notebook's cells share one kernel, later notebooks reuse what earlier ones saved, and the site is built
    from the executed notebooks, so these must run in one worker, in collection order. (xdist's own
    ``--dist loadgroup`` cannot do it here: it renames test ids, which pytest 9.2 no longer lets a plugin do.)
    Only the default distribution is changed: ``--dist loadfile`` and the others work as documented.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return "notebooks" if path.endswith(".ipynb") or path == "tests/test_site.py" else nodeid

    return NotebooksTogether(config, log)
