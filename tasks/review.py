"""A shot's review: its gate's verdict over its attempts (tasks/gates.py), a person's approval
kept by the shot's digest, and what a render's manifest says about both."""

from __future__ import annotations

from pydantic import BaseModel

from cache.keys import node_key, node_key_parts
from cache.store import Artifact, ArtifactStore, NodeRecord


class Attempt(BaseModel):
    number: int
    key: str  # the shot node's
    digest: str  # the shot's bytes
    gate_key: str  # empty: the gate could not measure it
    identity: dict[str, float]
    reasons: list[str]  # why it failed; none: it passed
    look: float | None = None  # ΔE from its location's reference (tasks/look.py)
    # The gate's correction of the shot (graded, enlarged), used in its place.
    corrected: Artifact | None = None


class ShotReview(BaseModel):
    """A shot's gate over its attempts: which one is used, and whether a person must look."""

    threshold: float
    attempts: list[Attempt]
    chosen: int  # the number of the attempt used
    # Where a person's approval of the chosen attempt, failing as it is, is kept.
    approval_key: str | None = None
    # Paid this run, and saved by reuse, for the attempts not used and every gate.
    cost_usd: float = 0.0
    saved_usd: float = 0.0

    @property
    def used(self) -> Attempt:
        return self.attempts[self.chosen - 1]

    @property
    def approved(self) -> bool:
        return self.approval_key is not None

    @property
    def flagged(self) -> bool:
        return bool(self.used.reasons) and not self.approved

    def unlike(self, attempt: Attempt) -> bool:
        """Whether `attempt` failed the identity gate."""
        return any(score < self.threshold for score in attempt.identity.values())


def _approval(digest: str) -> dict:
    return node_key_parts(kind="approval", version=1, provider="reelflow", provider_version=1,
                          model="review", params={}, inputs={"shot": digest})


def approval_key(digest: str) -> str:
    """Where a person's approval of the shot with these bytes is kept."""
    return node_key(**_approval(digest))


def approve(store: ArtifactStore, digest: str) -> None:
    store.record(NodeRecord(key=approval_key(digest), kind="approval", provider="reelflow",
                            model="review", parts=_approval(digest), outputs={}))


def approved(store: ArtifactStore, digest: str) -> bool:
    return store.lookup(approval_key(digest)) is not None


def shot_digest(manifest: dict, shot_id: str) -> str:
    """The bytes of a published shot (a keyframe or a clip) that an approval is kept by."""
    node = next(node for node in manifest["nodes"] if node["id"] == shot_id)
    return node["outputs"][node["kind"]]


def still_flagged(manifest: dict, store: ArtifactStore) -> list[dict]:
    """The flagged shots of a published manifest that no one has approved since."""
    return [row for row in review_rows(manifest)
            if not approved(store, shot_digest(manifest, row["id"]))]


def review_rows(manifest: dict) -> list[dict]:
    """The flagged shots of a published manifest, for `reelflow review`, summaries and the UI."""
    rows = []
    for node in manifest.get("nodes", []):
        review = node.get("review")
        if review is None:
            continue
        shot = ShotReview.model_validate(review)
        if shot.flagged:
            rows.append({"id": node["id"], "scene": node["scene"], "kind": node["kind"],
                         "attempts": len(shot.attempts), "chosen": shot.chosen,
                         "identity": shot.used.identity, "reasons": shot.used.reasons})
    return rows


def drift(manifest: dict) -> dict:
    """The share of gated shots that failed identity on their first attempt, and after retries."""
    reviews = [ShotReview.model_validate(node["review"]) for node in manifest.get("nodes", [])
               if node.get("review")]
    identity = [review for review in reviews if review.attempts[0].identity]
    first = sum(review.unlike(review.attempts[0]) for review in identity)
    after = sum(review.unlike(review.used) and not review.approved for review in identity)
    shots = len(identity)
    return {"shots": shots, "first_attempt": round(first / shots, 4) if shots else 0.0,
            "after_retries": round(after / shots, 4) if shots else 0.0}

