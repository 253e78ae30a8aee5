"""OpenAICompatiblePlanner: the real OpenAI SDK against a fake chat completions API over HTTPS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.providers.base import ProviderError
from tasks.providers.openai_compatible import NO_KEY, OpenAICompatiblePlanner
from tasks.storyboard import VideoRequest
from tests.fakes.openai import CHAT_PATH, FakeOpenAI, TOKENS_PER_REPLY, draft_json
from tests.fakes.server import Response

KEY = "canary-openai-key-789"
REQUEST = VideoRequest(topic="how tides work", scenes=3, seed=11)


@pytest.fixture
def fake(tls, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for name in ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAI(tls) as server:
        yield server


def plan(fake, **options):
    planner = OpenAICompatiblePlanner({"base_url": f"{fake.url}/v1", "attempts": 3,
                                       "deadline_s": 10, "timeout_s": 5, **options})
    return planner.plan(REQUEST)


def calls(fake):
    return fake.server.calls("POST", CHAT_PATH)


def test_plan_is_a_storyboard_of_the_scenes_asked_for(fake):
    result = plan(fake)
    board = result.storyboard
    assert [scene.id for scene in board.scenes] == ["s001", "s002", "s003"]
    assert board.title == "Tides, explained" and board.seed == 11
    assert [scene.on_screen_text for scene in board.scenes] == [
        "Tides, point 1", "Tides, point 2", "Tides, point 3"]
    assert result.usage.tokens == TOKENS_PER_REPLY
    assert fake.billable == 1


def test_request_sends_the_key_model_schema_and_seed(fake):
    plan(fake)
    [call] = calls(fake)
    assert call.headers["authorization"] == f"Bearer {KEY}"
    body = call.json()
    assert body["model"] == "gpt-4o-mini" and body["seed"] == 11
    assert body["response_format"]["type"] == "json_schema"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "exactly 3 scenes" in body["messages"][1]["content"]


def test_the_schema_asks_for_exactly_the_scenes_and_the_storyboards_limits(fake):
    plan(fake)
    body = calls(fake)[0].json()
    schema = body["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == {"title", "scenes"}
    scenes = schema["properties"]["scenes"]
    assert (scenes["minItems"], scenes["maxItems"]) == (3, 3)
    assert schema["properties"]["title"]["maxLength"] == 200
    scene = schema["$defs"]["DraftScene"]["properties"]
    assert scene["on_screen_text"]["maxLength"] == 60
    assert json.dumps(schema) in body["messages"][0]["content"]  # the same schema in the prompt


def test_a_server_that_refuses_json_schema_is_asked_for_json_object_for_the_rest_of_the_plan(
        fake):
    fake.refuses_json_schema = True
    fake.replies.append('{"title": "Tides"}')  # sent back once: json_object is not asked twice

    result = plan(fake)

    refused, first, repair = calls(fake)
    assert refused.json()["response_format"]["type"] == "json_schema"
    assert first.json()["response_format"] == repair.json()["response_format"] == {
        "type": "json_object"}
    assert len(result.storyboard.scenes) == 3 and fake.billable == 2


def test_json_object_mode_asks_for_json_only(fake):
    plan(fake, response_format="json_object")
    assert calls(fake)[0].json()["response_format"] == {"type": "json_object"}


def test_text_mode_sends_no_response_format_and_accepts_fenced_json(fake):
    fake.replies.append(f"```json\n{draft_json(3)}\n```")
    assert len(plan(fake, response_format="text").storyboard.scenes) == 3
    assert "response_format" not in calls(fake)[0].json()


def test_a_local_server_without_key_gets_no_real_key(fake):
    planner = OpenAICompatiblePlanner({"base_url": f"{fake.url}/v1", "key_env": None,
                                       "model": "llama3.2"})
    assert planner.needs_key is None
    assert len(planner.plan(REQUEST).storyboard.scenes) == 3
    [call] = calls(fake)
    assert call.headers["authorization"] == f"Bearer {NO_KEY}"
    assert KEY not in str(call.headers)


def test_an_invalid_reply_is_repaired_once(fake):
    fake.replies.append('{"title": "Tides"}')
    result = plan(fake)
    assert len(result.storyboard.scenes) == 3
    first, repair = calls(fake)
    repair_prompt = repair.json()["messages"][1]["content"]
    assert '{"title": "Tides"}' in repair_prompt and "rejected" in repair_prompt
    assert result.usage.tokens == 2 * TOKENS_PER_REPLY


def test_two_invalid_replies_are_an_error(fake):
    fake.replies += ["not json at all", '{"scenes": []}']
    with pytest.raises(ProviderError, match="did not validate twice"):
        plan(fake)
    assert len(calls(fake)) == 2


def test_three_scenes_for_six_are_sent_back_once_then_split_to_six(fake):
    fake.replies += [draft_json(3), draft_json(3)]

    result = OpenAICompatiblePlanner({"base_url": f"{fake.url}/v1"}).plan(
        VideoRequest(topic="how tides work", scenes=6))

    first, repair = calls(fake)  # one repair request, no more
    assert "expected 6 scenes, got 3" in repair.json()["messages"][1]["content"]
    schema = first.json()["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["scenes"]["minItems"] == schema["properties"]["scenes"][
        "maxItems"] == 6
    assert len(result.storyboard.scenes) == 6
    assert result.adjustments == ["scenes: the model wrote 3 of the 6 scenes asked; split the "
                                  "longest in two until there were 6"]


@pytest.mark.parametrize("reply", [
    Response(200, b"{garbage", {"Content-Type": "application/json"}),
    Response.json({"id": "x", "object": "chat.completion", "choices": []}),
], ids=["garbage-json", "no-choices"])
def test_malformed_reply_is_an_error(fake, reply):
    fake.server.fail("POST", CHAT_PATH, [reply])
    with pytest.raises(ProviderError):
        plan(fake)
    assert len(calls(fake)) == 1


def test_key_env_may_name_any_variable_and_that_key_is_redacted(monkeypatch):
    from config.secrets import MissingSecretError, redact, secret

    monkeypatch.setenv("GROQ_API_KEY", "gsk-canary-0123456789")
    planner = OpenAICompatiblePlanner({"key_env": "GROQ_API_KEY"})
    assert planner.needs_key == "GROQ_API_KEY"
    assert redact("the server said gsk-canary-0123456789") == "the server said ***"
    monkeypatch.delenv("GROQ_API_KEY")
    with pytest.raises(MissingSecretError, match="GROQ_API_KEY is not set"):
        secret(planner.needs_key)
    with pytest.raises(ValueError, match="not an environment variable name"):
        OpenAICompatiblePlanner({"key_env": "not a name"})
    assert "key_env" not in OpenAICompatiblePlanner().params()


def test_reelflow_plan_on_a_free_self_hosted_server_says_what_it_adjusted(fake, cli_env,
                                                                          workspace, tmp_path):
    """A local model priced free in one line, a server that refuses json_schema and writes 3
    scenes for 6: the plan has 6, each run says so on stderr, and the rerun asks nothing."""
    from cache import open_store
    from tests.test_cli_input import run

    fake.refuses_json_schema = True
    fake.replies += [draft_json(3), draft_json(3)]
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai-compatible: free\n")
    env = {**cli_env, "REELFLOW_PLANNER": "openai-compatible:llama3.2",
           "REELFLOW_PRICES": str(prices), "REELFLOW_PROVIDER_OPTIONS": json.dumps(
               {"openai-compatible": {"base_url": f"{fake.url}/v1", "key_env": None}})}

    first, again = (run(["plan", "how tides work", "--scenes", "6"], env) for _ in range(2))

    assert first.returncode == 0, first.stderr
    assert len(json.loads(first.stdout)["scenes"]) == 6 and again.stdout == first.stdout
    warning = ("warning: scenes: the model wrote 3 of the 6 scenes asked; split the longest in "
               "two until there were 6")
    assert first.stderr.splitlines() == again.stderr.splitlines() == [warning]
    assert len(calls(fake)) == 3  # json_schema refused, the reply, one repair; none on the rerun
    [record] = open_store(str(workspace["store"])).records()
    assert (record.model, record.cost_usd, record.usage["tokens"]) == (
        "llama3.2", 0.0, 2 * TOKENS_PER_REPLY)


def test_reelflow_make_prints_what_the_plan_adjusted(fake, cli_env, prefect_api_url, tmp_path):
    from tests.test_cli_input import run

    fake.replies += [draft_json(1), draft_json(1)]
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai-compatible: {llama3.2: free}\n")
    env = {**cli_env, "PREFECT_API_URL": prefect_api_url,
           "REELFLOW_PLANNER": "openai-compatible:llama3.2", "REELFLOW_PRICES": str(prices),
           "REELFLOW_PROVIDER_OPTIONS": json.dumps(
               {"openai-compatible": {"base_url": f"{fake.url}/v1", "key_env": None}})}

    result = run(["make", "how tides work", "--scenes", "2", "--no-music"], env)

    assert result.returncode == 0, result.stderr
    assert ("warning: scenes: the model wrote 1 of the 2 scenes asked; split the longest in two "
            "until there were 2") in result.stderr.splitlines()
    assert len(json.loads(Path(result.stdout.strip()).with_name("storyboard.json").read_text())[
        "scenes"]) == 2
