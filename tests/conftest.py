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
