"""Where a render's tasks run: threads in this process, or a Dask cluster.

A Dask worker runs each task under the flow's Prefect settings, sent along with the task, so it
reports to the flow's server when PREFECT_API_URL names one. Without one the flow talks to a
temporary server it started itself, which no setting names: each worker would start its own
(task states, and the run's --max-cost ledger, would then never meet). A temporary local
cluster is therefore told the flow's server; an existing cluster cannot be, and gets a warning.
"""

from __future__ import annotations

import sys

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from config.settings import Settings


def task_runner(settings: Settings) -> TaskRunner:
    """`threads` (default), or `dask` at `dask_address` (a temporary local cluster without one)."""
    if settings.task_runner == "dask":
        from prefect.settings import PREFECT_API_URL
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            if not PREFECT_API_URL.value():
                print(f"warning: dask: the workers at {settings.dask_address} will each start "
                      "their own Prefect server: set PREFECT_API_URL for reelflow to a Prefect "
                      "server they can reach (e.g. http://THIS-HOST:4200/api after `prefect server "
                      "start --host 0.0.0.0`); the workers get it from the run", file=sys.stderr)
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner(cluster_class=local_cluster)
    return ThreadPoolTaskRunner()


def local_cluster(**kwargs):
    """A temporary Dask cluster on this machine whose workers report to the flow's Prefect
    server, a temporary one included; call it in the flow run (DaskTaskRunner does)."""
    import distributed
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    return distributed.LocalCluster(env={"PREFECT_API_URL": api_url}, **kwargs)
