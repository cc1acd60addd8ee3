"""Snakemake's command line for the test cluster's head job: the SLURM executor plugin polls squeue
every `--seconds-between-status-checks` seconds (the test profile's 2 s).

The plugin (2.8.0) lengthens its wait by 10 s after each status check that finds no finished job
(upstream: snakemake-executor-plugin-slurm#319, "respect --seconds-between-status-checks"), so a job
of 12 s on this one-node cluster was seen done after 33 s (the SLURM run of tests/test_slurm.py took
239 s with that wait, 148 s without). Every job still goes through sbatch and squeue.
"""

import asyncio

import snakemake_executor_plugin_slurm as slurm
from snakemake.cli import main


async def _sleep_between_status_checks(self) -> None:
    await asyncio.sleep(self.workflow.remote_execution_settings.seconds_between_status_checks)


assert hasattr(slurm.Executor, "sleep"), "the SLURM plugin no longer waits through Executor.sleep"
slurm.Executor.sleep = _sleep_between_status_checks

if __name__ == "__main__":
    main()
