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


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs two workers with --dist loadgroup), keep the tests that
    share one expensive run in one worker: the micro workflow run (and the SLURM tests, which
    compare with it and share one cluster) and the paper-shaped run. The rest spread freely."""
    for item in items:
        if "micro_run" in getattr(item, "fixturenames", ()) or item.path.name == "test_slurm.py":
            item.add_marker(pytest.mark.xdist_group("micro"))
        elif item.path.name == "test_paper_shapes.py":
            item.add_marker(pytest.mark.xdist_group("paper"))
