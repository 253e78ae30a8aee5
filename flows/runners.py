"""Where a render's tasks run: threads in this process, or an existing Dask cluster."""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from config.settings import Settings


def task_runner(settings: Settings) -> TaskRunner:
    """`threads` (default), or `dask` at `dask_address` (a temporary local cluster without one)."""
    if settings.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner()
    return ThreadPoolTaskRunner()
