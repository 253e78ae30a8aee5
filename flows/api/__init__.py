"""The HTTP API (`reelflow api`): a thin door onto the deployments. A job is a Prefect flow
run, and everything the API says about it is read back from Prefect."""
