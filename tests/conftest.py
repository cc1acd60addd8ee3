import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # the demo-corpus builder's helpers


import pytest  # noqa: E402

from helpers import REPO, micro_lock, snakemake_local  # noqa: E402


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    """The micro config's workflow run once locally, shared by every test (and pytest-xdist worker)
    that takes it: the first one to ask runs it under a file lock, the others wait and reuse it.
    A test that reruns jobs in it holds `helpers.micro_lock` meanwhile and leaves it as it found it."""
    import subprocess

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder every worker's base temp sits in
    wd, log = shared / "micro_run", shared / "micro_run.json"
    with micro_lock(wd):
        if not log.exists():
            wd.mkdir()
            (wd / "data").symlink_to(REPO / "data")
            run = snakemake_local(wd, "--configfile", str(REPO / "config" / "micro.yaml"))
            log.write_text(json.dumps({"returncode": run.returncode, "stdout": run.stdout, "stderr": run.stderr}))
    first = subprocess.CompletedProcess(args=[], **json.loads(log.read_text()))
    assert first.returncode == 0, first.stderr[-3000:]
    return wd, first


def _groups() -> dict[str, str]:
    """Tests that should share one worker process, by node id (or file): those that take the micro
    workflow run (`micro_run`) and the SLURM tests (one cluster; they start from a copy of the micro
    run) in "micro", the paper-shaped run in "paper", the pretrained lineage's run in "pretrained". (Three workers, with the SLURM tests in a group
    of their own, measured slower on two cores: 13:17 against 12:29; the SLURM run has to wait for
    the micro run either way, and the third process only adds contention.)"""
    import ast

    groups = {"tests/test_slurm.py": "micro", "tests/test_paper_shapes.py": "paper", "tests/test_pretrained.py": "pretrained"}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.FunctionDef) and "micro_run" in {a.arg for a in node.args.args}
                    and f"tests/{path.name}" not in groups):
                groups[f"tests/{path.name}::{node.name}"] = "micro"
    return groups


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs two pytest-xdist workers: each group above is one unit of work (the two
    largest go first, one to each worker), every other test its own unit. (xdist's `loadgroup`
    does not group under pytest 9: it renames node ids, which pytest 9 no longer lets it do.)"""
    from xdist.scheduler import LoadScopeScheduling

    groups = _groups()

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            test = nodeid.split("[", 1)[0]
            return groups.get(test) or groups.get(test.split("::", 1)[0]) or nodeid

    return GroupScheduling(config, log)
