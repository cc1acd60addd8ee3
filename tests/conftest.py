import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # the demo-corpus builder's helpers


import pytest  # noqa: E402

from helpers import REPO, snakemake_local  # noqa: E402


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    """The micro config's workflow run once locally (shared by the workflow and SLURM tests)."""
    wd = tmp_path_factory.mktemp("micro")
    (wd / "data").symlink_to(REPO / "data")
    first = snakemake_local(wd, "--configfile", str(REPO / "config" / "micro.yaml"))
    assert first.returncode == 0, first.stderr[-3000:]
    return wd, first


def _groups() -> dict[str, str]:
    """Tests that must share one worker process, by node id (or file): those that take the micro
    workflow run (`micro_run`, built once per process) and the SLURM tests (one cluster, and they
    compare with that run) in "micro"; the paper-shaped run in "paper"."""
    import ast

    groups = {"tests/test_slurm.py": "micro", "tests/test_paper_shapes.py": "paper"}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and "micro_run" in {a.arg for a in node.args.args}:
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
