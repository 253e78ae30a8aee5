"""Provider concurrency across processes: Prefect tag concurrency limits named
`provider:<name>`, created by `reelflow serve` from the profiles' `provider_concurrency`.

A provider's tasks carry its tag only when the server has a limit for it. Prefect 3.8 spends
about two seconds per flow run acquiring slots for a task tag whether or not a limit exists
(a 6-scene no-change rerun: 3-5 s with tags, 1.1 s without), a price worth paying only where
a limit is enforced.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from config.settings import load_settings, profile_path


def provider_tag(spec: str) -> str:
    """`replicate:owner/model` → `provider:replicate`."""
    return f"provider:{spec.split(':')[0]}"


def provider_limits() -> dict[str, int]:
    """Concurrency per provider tag, from every profile (the smallest limit wins)."""
    limits: dict[str, int] = {}
    for path in sorted(profile_path("local").parent.glob("*.yaml")):
        for provider, limit in load_settings(path.stem).provider_concurrency.items():
            tag = provider_tag(provider)
            limits[tag] = min(limit, limits.get(tag, limit))
    return limits


def create_concurrency_limits() -> None:
    with get_client(sync_client=True) as client:
        for tag, limit in provider_limits().items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=limit)


def limited(tags: set[str]) -> set[str]:
    """Those of `tags` that have a concurrency limit on the server."""
    found = set()
    with get_client(sync_client=True) as client:
        for tag in tags:
            try:
                client.read_concurrency_limit_by_tag(tag)
            except ObjectNotFound:
                continue
            found.add(tag)
    return found
