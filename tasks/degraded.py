"""What a run did other than what its profile promised, as lines a user can act on: chains
whose preferred provider could not run, nodes a fallback served (how many, and why), pictures
left as placeholders, a video whose lines are spoken by more than one provider, and what the
planner adjusted. The CLI prints them, `--json` and the manifest carry them as `warnings`, and
the Prefect run summary lists them.

Speech policy: a line the preferred voice provider failed is spoken by the next one, and the
video is flagged as mixing voices (here, once per run); the next run asks the preferred
provider again for those lines alone.
"""

from __future__ import annotations

from collections import defaultdict

from tasks.graph import KINDS
from tasks.nodes import NodeOutcome


def run_warnings(outcomes: list[NodeOutcome]) -> list[str]:
    """The warnings a run's node outcomes call for, in graph order of kinds."""
    served: dict[str, dict[str, list[NodeOutcome]]] = defaultdict(lambda: defaultdict(list))
    for outcome in outcomes:
        served[outcome.kind][outcome.record.provider].append(outcome)
    warnings = []
    for kind, by_provider in served.items():
        label = KINDS[kind].label if kind in KINDS else kind
        total = sum(len(nodes) for nodes in by_provider.values())
        for provider, nodes in by_provider.items():
            fell_back = [node for node in nodes if node.fallbacks]
            if not fell_back:
                continue
            first = fell_back[0]
            if first.status == "placeholder":
                ids = ", ".join(node.id for node in fell_back)
                warnings.append(f"{label}: placeholders for {ids}: every provider failed "
                                f"({_reason(first)}); the next run asks them again")
            else:
                warnings.append(f"{label}: {len(fell_back)} of {total} served by "
                                f"{provider}/{first.record.model} because {_reason(first)}")
        if kind == "tts" and len(by_provider) > 1:
            warnings.append(f"{label}: this video mixes voices (" + ", ".join(
                f"{provider}: {len(nodes)}" for provider, nodes in by_provider.items())
                + "); rerun when the preferred provider is back to re-voice only those lines")
    return warnings


def _reason(outcome: NodeOutcome) -> str:
    """The first failure, without the node id every one of them starts with."""
    return outcome.fallbacks[0].removeprefix(f"{outcome.id}: ")
