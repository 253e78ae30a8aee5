"""Every deployment in deployments/prefect.yaml points at a flow that loads."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).parent.parent


def test_every_deployment_entrypoint_loads_a_flow(monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    names = {}
    for deployment in spec["deployments"]:
        names[deployment["name"]] = load_flow_from_entrypoint(deployment["entrypoint"]).name
    assert names == {"make-video": "make-video", "render-storyboard": "render-storyboard"}
