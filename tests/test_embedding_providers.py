"""ReplicateEmbedding and VertexEmbedding: the real clients (the Replicate SDK, httpx with
google-auth credentials) against fakes over HTTPS that embed the pictures they are sent."""

from __future__ import annotations

import base64
import threading
import traceback
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials
from PIL import Image, ImageDraw

from cache.store import ArtifactStore
from config.secrets import MissingSecretError
from tasks import jobs, stopping
from tasks.providers import billing, registry
from tasks.providers.base import (
    BrokenOutput, EmbeddingRequest, Modality, ProviderError, TransientProviderError, Usage)
from tasks.providers.registry import ProviderConfigError
from tasks.providers.replicate import ReplicateEmbedding
from tasks.providers.vertex_embedding import VertexEmbedding
from tests.fakes.google import EMBED, FakeGoogle, digest, picture_vector
from tests.fakes.replicate import CLIP_LENGTH, CREATE_PATH, GET_PATH, FakeReplicate
from tests.fakes.server import HANG, RESET, Response

REPLICATE_TOKEN = "canary-replicate-token-789"
GOOGLE_TOKEN = "canary-vertex-token-321"
REPLICATE = {"attempts": 3, "deadline_s": 10, "timeout_s": 5, "poll_interval_s": 0.01}
VERTEX = {"attempts": 3, "deadline_s": 10, "timeout_s": 5, "project": "reelflow-test",
          "location": "us-central1"}


@pytest.fixture
def pictures(tmp_path) -> dict[str, Path]:
    """A character, the same one moved, a byte-for-byte copy of it, and a stranger."""
    def draw(name: str, background: str, disc: str, left: int) -> Path:
        image = Image.new("RGB", (64, 96), background)
        ImageDraw.Draw(image).ellipse((left, 30, left + 30, 60), fill=disc)
        image.save(tmp_path / f"{name}.png")
        return tmp_path / f"{name}.png"

    hero = draw("hero", "#1d3557", "#e63946", 4)
    (tmp_path / "hero-copy.png").write_bytes(hero.read_bytes())
    return {"hero": hero, "hero-copy": tmp_path / "hero-copy.png",
            "hero-moved": draw("hero-moved", "#1d3557", "#e63946", 28),
            "stranger": draw("stranger", "#2a9d8f", "#f4a261", 4)}


def request(*paths: Path) -> EmbeddingRequest:
    return EmbeddingRequest(images=list(paths))


def leaked(error: BaseException, token: str) -> bool:
    return token in "".join(traceback.format_exception(error))


# Replicate ---------------------------------------------------------------------------------


@pytest.fixture
def fake(tls, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", REPLICATE_TOKEN)
    with FakeReplicate(tls, polls=2) as server:
        yield server


def clip(fake, **options) -> ReplicateEmbedding:
    return ReplicateEmbedding({"base_url": fake.url, **REPLICATE, **options})


def creates(fake):
    return fake.server.calls("POST", CREATE_PATH)



def check_likeness(embedder, result, paths, length: int) -> None:
    """The vectors are the fake's for each picture, in order, and say which look alike: the
    hero, a stranger, the hero's copy, the hero moved a little."""
    assert result.vectors == [pytest.approx(picture_vector(path.read_bytes(), length))
                              for path in paths]
    hero, stranger, copy, moved = result.vectors
    assert embedder.similarity(hero, copy) == pytest.approx(1.0)
    assert embedder.similarity(hero, moved) > embedder.options.threshold
    assert embedder.similarity(hero, stranger) < 0.5

def test_replicate_embeds_each_picture_in_a_prediction_of_its_own_in_order(fake, pictures):
    embedder = clip(fake)
    paths = [pictures["hero"], pictures["stranger"], pictures["hero-copy"], pictures["hero-moved"]]

    result = embedder.embed(request(*paths))

    assert [call.method for call in fake.api_calls()][:4] == ["POST"] * 4  # all, then polls
    sent = [create.json()["input"]["image"] for create in creates(fake)]
    assert all(uri.startswith("data:image/png;base64,") for uri in sent)
    assert [base64.b64decode(uri.split(",", 1)[1]) for uri in sent] == \
        [path.read_bytes() for path in paths]
    assert {create.match.groups() for create in creates(fake)} == {("krthr", "clip-embeddings")}
    check_likeness(embedder, result, paths, CLIP_LENGTH)
    assert fake.embedded == [digest(path.read_bytes()) for path in paths]
    assert result.usage == Usage(images=4) and fake.succeeded == 4


def test_a_shot_that_drifted_scores_under_the_threshold(fake, pictures):
    shot = pictures["hero-moved"]
    fake.vectors_for[digest(shot.read_bytes())] = [1.0] + [0.0] * (CLIP_LENGTH - 1)
    embedder = clip(fake)

    drifted, reference = embedder.embed(request(shot, pictures["hero"])).vectors

    assert embedder.similarity(drifted, reference) < embedder.options.threshold


@pytest.mark.parametrize("output, match", [
    (None, "vector 1 is not a list of numbers"),  # no vector for a picture
    ({"embeddings": [[0.1, 0.2]]}, "vector 1 is not a list of numbers"),
    ({"embedding": []}, "vector 1 is not a list of numbers"),
    ({"embedding": ["0.1", "0.2"]}, "vector 1 is not a list of numbers"),
    ({"embedding": [float("nan"), 0.5]}, "vector 1 is not a list of numbers"),
    ("truncated", r"vectors of different lengths \(384, 768\)"),
])
def test_a_wrong_shaped_reply_is_a_broken_output_billed_for_every_picture(
        fake, pictures, output, match):
    if output == "truncated":
        fake.outcomes.append("truncated")  # the first picture's vector cut in half
    else:
        fake.output = output

    with pytest.raises(BrokenOutput, match=match) as caught:
        clip(fake).embed(request(pictures["hero"], pictures["stranger"]))

    assert caught.value.usage == Usage(images=2) and fake.succeeded == 2
    assert len(creates(fake)) == 2  # the node retries it, not the provider


@pytest.mark.parametrize("fault", [
    Response.json({"title": "Too many requests", "detail": "Request was throttled.",
                   "status": 429}, 429, {"Retry-After": "0"}),
    Response.json({"title": "Internal Server Error", "status": 500}, 500),
    Response(201, b'{"id": "p00', {"Content-Type": "application/json"}),  # cut short
    RESET,
    HANG,  # past timeout_s
], ids=["429", "500", "cut-short", "reset", "hang"])
def test_a_transient_failure_to_create_is_retried(fake, pictures, fault):
    fake.server.fail("POST", CREATE_PATH, [fault])

    result = clip(fake, timeout_s=0.5).embed(request(pictures["hero"]))

    assert len(result.vectors) == 1 and len(creates(fake)) == 2 and fake.succeeded == 1


def test_a_rejected_prediction_is_a_permanent_error_naming_replicate(fake, pictures):
    fake.server.fail("POST", CREATE_PATH, [Response.json(
        {"title": "Input validation failed", "detail": "image: Does not match format 'uri'",
         "status": 422}, 422)])

    with pytest.raises(ProviderError, match="^replicate: HTTP 422") as caught:
        clip(fake).embed(request(pictures["hero"]))

    assert not isinstance(caught.value, TransientProviderError) and caught.value.status == 422
    assert len(creates(fake)) == 1


def test_replicate_errors_never_quote_the_token(fake, pictures):
    fake.server.fail("POST", CREATE_PATH, [Response.json(
        {"title": "Unauthenticated", "detail": f"Invalid token {REPLICATE_TOKEN}",
         "status": 401}, 401)])

    with pytest.raises(ProviderError, match=r"Invalid token \*\*\*") as caught:
        clip(fake).embed(request(pictures["hero"]))

    assert not leaked(caught.value, REPLICATE_TOKEN)


def test_a_stopped_run_leaves_its_predictions_to_the_next_which_polls_them_in_order(
        fake, pictures, tmp_path):
    store = ArtifactStore(tmp_path / "store")
    node = "7" * 64
    paths = [pictures["hero"], pictures["stranger"]]
    fake.polls = None  # running until the test lets them finish
    failure: list[BaseException] = []

    def first_run():
        try:
            with jobs.kept(store, node, "replicate"):
                clip(fake).embed(request(*paths))
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            failure.append(error)

    worker = threading.Thread(target=first_run)
    worker.start()
    fake.server.wait_for_calls("GET", GET_PATH, 2)  # both created, and being polled
    stopping.request("Ctrl-C")
    worker.join(30)
    stopping.reset()
    assert [type(error) for error in failure] == [stopping.Stopped]
    assert store.pending_job(node)["id"] == "p0001 p0002"

    fake.polls = 1
    with jobs.kept(store, node, "replicate"):
        result = clip(fake).embed(request(*paths))

    assert len(creates(fake)) == 2 and fake.succeeded == 2  # resumed, not paid again
    assert result.vectors == [pytest.approx(picture_vector(path.read_bytes(), CLIP_LENGTH))
                              for path in paths]


# Vertex AI ---------------------------------------------------------------------------------


@pytest.fixture
def google(tls):
    with FakeGoogle(tls) as server:
        yield server


def vertex(google, **options) -> VertexEmbedding:
    return VertexEmbedding({"base_url": google.url, **VERTEX, **options},
                           credentials=Credentials(token=GOOGLE_TOKEN))


def test_vertex_embeds_one_picture_a_request_in_order(google, pictures):
    embedder = vertex(google)
    paths = [pictures["hero"], pictures["stranger"], pictures["hero-copy"], pictures["hero-moved"]]

    result = embedder.embed(request(*paths))

    calls = google.calls("POST", EMBED)
    assert {call.path for call in calls} == {
        "/v1/projects/reelflow-test/locations/us-central1/publishers/google/models/"
        "multimodalembedding@001:predict"}
    assert all(call.headers["authorization"] == f"Bearer {GOOGLE_TOKEN}" for call in calls)
    bodies = [call.json() for call in calls]
    assert all(body["parameters"] == {"dimension": 1408} for body in bodies)
    assert [[base64.b64decode(instance["image"]["bytesBase64Encoded"])
             for instance in body["instances"]] for body in bodies] == \
        [[path.read_bytes()] for path in paths]
    check_likeness(embedder, result, paths, 1408)
    assert google.embedded == [digest(path.read_bytes()) for path in paths]
    assert result.usage == Usage(images=4) and google.billed["embedded_images"] == 4


def test_a_shorter_dimension_is_asked_for_and_shapes_the_key(google, pictures):
    embedder = vertex(google, dimension=256)

    [vector] = embedder.embed(request(pictures["hero"])).vectors

    assert len(vector) == 256
    assert google.calls("POST", EMBED)[0].json()["parameters"] == {"dimension": 256}
    assert embedder.params() == {"dimension": 256}


@pytest.mark.parametrize("vector, match", [
    ([0.5] * 64, r"vectors of different lengths \(64, 1408\)"),
    ([], "vector 1 is not a list of numbers"),
    (["0.5"] * 1408, "vector 1 is not a list of numbers"),
    (None, "vector 1 is not a list of numbers"),
])
def test_vectors_vertex_got_wrong_are_a_broken_output_billed_for_every_picture(
        google, pictures, vector, match):
    google.vectors_for[digest(pictures["hero"].read_bytes())] = vector

    with pytest.raises(BrokenOutput, match=match) as caught:
        vertex(google).embed(request(pictures["hero"], pictures["stranger"]))

    assert caught.value.usage == Usage(images=2)
    assert len(google.calls("POST", EMBED)) == 2


def test_a_reply_cut_short_is_asked_again_and_charged(google, pictures):
    google.embeddings.append("truncated")

    with billing.metered() as dropped:
        result = vertex(google).embed(request(pictures["hero"], pictures["stranger"]))

    assert len(result.vectors) == 2 and len(google.calls("POST", EMBED)) == 3
    assert dropped == [Usage(images=1)] and google.billed["embedded_images"] == 3


def test_a_reply_without_the_embedding_fails_once_attempts_are_spent(google, pictures):
    google.embeddings.extend(["missing"] * 3)  # as many as attempts

    with billing.metered() as dropped, pytest.raises(
            ProviderError, match="no image embedding .*gave up after 3 attempts"):
        vertex(google).embed(request(pictures["hero"]))

    assert len(google.calls("POST", EMBED)) == 3 and len(dropped) == 3


@pytest.mark.parametrize("fault", [
    Response.json({"error": {"code": 429, "message": "Quota exceeded for aiplatform."
                             "googleapis.com/online_prediction_requests_per_base_model",
                             "status": "RESOURCE_EXHAUSTED"}}, 429, {"Retry-After": "0"}),
    Response.json({"error": {"code": 500, "message": "Internal error encountered.",
                             "status": "INTERNAL"}}, 500),
    RESET,
    HANG,  # past timeout_s
], ids=["429", "500", "reset", "hang"])
def test_a_transient_failure_of_vertex_is_retried(google, pictures, fault):
    google.fail("POST", EMBED, [fault])

    result = vertex(google, timeout_s=0.5).embed(request(pictures["hero"]))

    assert len(result.vectors) == 1 and len(google.calls("POST", EMBED)) == 2


def test_a_rejected_request_is_a_permanent_error_naming_vertex(google, pictures):
    google.fail("POST", EMBED, [Response.json({"error": {
        "code": 400, "message": "Image size is too large.", "status": "INVALID_ARGUMENT"}}, 400)])

    with pytest.raises(ProviderError, match="^vertex: HTTP 400: Image size is too large") \
            as caught:
        vertex(google).embed(request(pictures["hero"]))

    assert not isinstance(caught.value, TransientProviderError) and caught.value.status == 400
    assert len(google.calls("POST", EMBED)) == 1


def test_vertex_errors_never_quote_the_access_token(google, pictures):
    google.fail("POST", EMBED, [Response.json({"error": {
        "code": 403, "message": f"Permission denied for token {GOOGLE_TOKEN}",
        "status": "PERMISSION_DENIED"}}, 403)])

    with pytest.raises(ProviderError, match=r"for token \*\*\*") as caught:
        vertex(google).embed(request(pictures["hero"]))

    assert not leaked(caught.value, GOOGLE_TOKEN)


def test_missing_credentials_or_project_are_named_before_any_call(
        google, pictures, tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    no_credentials = VertexEmbedding({"base_url": google.url, **VERTEX})
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    no_project = VertexEmbedding({"base_url": google.url},
                                 credentials=Credentials(token=GOOGLE_TOKEN))

    assert "GOOGLE_APPLICATION_CREDENTIALS" in no_credentials.unavailable()
    with pytest.raises(MissingSecretError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        no_credentials.embed(request(pictures["hero"]))
    assert "vertex: no Google Cloud project" in no_project.unavailable()
    assert google.calls() == []


# Both --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["replicate", "vertex"])
def test_the_threshold_is_an_option_from_0_to_1_kept_out_of_the_key(name):
    low = registry.create(Modality.embedding, name, {"threshold": 0.0})
    high = registry.create(Modality.embedding, name, {"threshold": 1.0})

    assert (low.options.threshold, high.options.threshold) == (0.0, 1.0)
    assert "threshold" not in low.params() and low.params() == high.params()
    for refused in (-0.1, 1.5):
        with pytest.raises(ProviderConfigError, match=f"{name}.threshold"):
            registry.create(Modality.embedding, name, {"threshold": refused})


def test_both_are_registered_as_embedders_with_their_default_models():
    replicate = registry.create(Modality.embedding, "replicate")
    google = registry.create(Modality.embedding, "vertex")

    assert (replicate.model, google.model) == ("krthr/clip-embeddings", "multimodalembedding@001")
    assert replicate.options.threshold == google.options.threshold == 0.82
