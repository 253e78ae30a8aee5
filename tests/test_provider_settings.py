"""Provider settings say no to mistakes (check_providers), and a user's price table is laid over
the shipped one."""

from __future__ import annotations

import pytest

from config.pricing import PriceError, cost_usd, price_table
from config.secrets import MissingSecretError
from config.settings import Settings, load_settings
from tasks.preflight import check_providers
from tasks.providers.base import Modality
from tasks.nodes import provider_chain
from tasks.providers.registry import ProviderConfigError

KNOWN = "elevenlabs, espeak, gemini, gemini-image, kenburns, local, openai-compatible, replicate, veo, vertex"


@pytest.fixture(autouse=True)
def no_keys(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env to find
    for name in ("GEMINI_API_KEY", "ELEVENLABS_API_KEY", "REPLICATE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("settings, line", [
    ({"provider_options": {"espeek": {"rate": 160}}},
     f"provider_options: no provider named 'espeek' (known: {KNOWN})"),
    ({"provider_options": {"espeak": {"rat": 160}}},
     "provider_options.espeak: unknown option 'rat' (valid: attempts, base_url, deadline_s, "
     "model, pitch, rate, timeout_s)"),
    ({"provider_options": {"veo": {"poll_every_s": 5}}},  # a provider no chain uses
     "provider_options.veo: unknown option 'poll_every_s' (valid: attempts, base_url, "
     "deadline_s, generate_audio, location, model, poll_interval_s, project, "
     "timeout_s)"),
    ({"provider_options": {"espeak": {"rate": "fast"}}},
     "provider_options.espeak.rate: Input should be a valid integer, unable to parse string as "
     "an integer"),
    ({"video": ["veoo", "kenburns"]}, "video: no provider named 'veoo' (known: kenburns, "
     "replicate, veo)"),
    ({"image": ["gemini"]}, "image: no provider named 'gemini' (known: gemini-image, local, "
     "replicate)"),
    ({"voices": {"elevenlab": {"narrator": "x"}}},
     "voices: no provider named 'elevenlab' (known: elevenlabs, espeak)"),
    ({"provider_concurrency": {"veoo": 2}},
     f"provider_concurrency: no provider named 'veoo' (known: {KNOWN})"),
    ({"planner": ["openai-compatible:qwen2.5"],
      "provider_options": {"openai-compatible": {"key_env": None}}},
     "prices: no price for provider 'openai-compatible' model 'qwen2.5' (price it in your "
     "REELFLOW_PRICES table, or mark a self-hosted provider free: `openai-compatible: free`)"),
], ids=["options-key", "option", "option-unused-provider", "option-value", "chain", "modality",
        "voices", "concurrency", "unpriced"])
def test_a_provider_setting_that_names_nothing_real_is_refused_in_one_line(settings, line):
    with pytest.raises(ProviderConfigError) as refused:
        check_providers(Settings(**settings))
    assert str(refused.value) == line


def test_options_for_a_provider_no_chain_uses_are_accepted_when_one_of_its_kinds_takes_them():
    # reference_input is an option of Replicate's image models only
    check_providers(Settings(provider_options={
        "replicate": {"reference_input": "image_prompt"}, "veo": {"poll_interval_s": 1}}))


def test_only_the_keys_of_the_chains_a_command_calls_are_required():
    settings = Settings(speech=["elevenlabs"])

    check_providers(settings, [Modality.planner])
    with pytest.raises(MissingSecretError, match="ELEVENLABS_API_KEY"):
        check_providers(settings)


def test_a_users_price_file_is_laid_over_the_shipped_table(tmp_path):
    shipped = price_table()
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai-compatible: free\n"
                      "gemini: {gemini-2.5-flash: {per_1k_tokens: 0.001}}\n"
                      "replicate: {acme/painter: {per_image: 0.01}}\n")

    table = price_table(prices)

    assert table["elevenlabs"] == shipped["elevenlabs"]  # what the user did not price stays
    assert cost_usd("gemini", "gemini-2.5-flash", {"tokens": 2000}, table) == 0.002
    assert table["gemini"]["gemini-2.5-pro"] == shipped["gemini"]["gemini-2.5-pro"]
    assert cost_usd("replicate", "acme/painter", {"images": 2}, table) == 0.02
    assert table["replicate"]["black-forest-labs/flux-schnell"] == shipped["replicate"][
        "black-forest-labs/flux-schnell"]
    for model in ("llama3.2", "gpt-4o-mini"):  # every model of a free provider
        assert cost_usd("openai-compatible", model, {"tokens": 10_000}, table) == 0.0
    check_providers(Settings(planner=["openai-compatible:llama3.2"], prices=prices,
                             provider_options={"openai-compatible": {"key_env": None}}))


def test_one_model_can_be_free_and_the_others_keep_their_prices(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai-compatible: {llama3.2: free}\n")

    table = price_table(prices)

    assert cost_usd("openai-compatible", "llama3.2", {"tokens": 10_000}, table) == 0.0
    assert cost_usd("openai-compatible", "gpt-4o-mini", {"tokens": 10_000}, table) > 0
    with pytest.raises(PriceError):
        cost_usd("openai-compatible", "qwen3", {"tokens": 1}, table)


@pytest.mark.parametrize("text, problem", [
    ("- a list\n", "the table: must map provider names to their models' prices"),
    ("gemini: cheap\n", "gemini: give its models' prices, or 'free'"),
    ("gemini: {gemini-2.5-flash: 0.1}\n", "gemini/gemini-2.5-flash: give its prices by unit, "
     "or 'free'"),
    ("gemini: {gemini-2.5-flash: {per_token: 0.1}}\n", "gemini/gemini-2.5-flash: unknown unit "
     "'per_token' (valid: per_1k_characters, per_1k_tokens, per_image, per_video_second)"),
    ("gemini: {gemini-2.5-flash: {per_1k_tokens: -1}}\n", "gemini/gemini-2.5-flash/per_1k_tokens: "
     "must be a number of USD, 0 or more"),
], ids=["list", "provider", "model", "unit", "negative"])
def test_a_price_file_that_is_not_a_price_table_is_refused_naming_the_entry(tmp_path, text,
                                                                            problem):
    prices = tmp_path / "prices.yaml"
    prices.write_text(text)
    with pytest.raises(ProviderConfigError) as refused:
        check_providers(Settings(prices=prices))
    assert str(refused.value) == f"prices: {prices}: {problem}"


def test_the_ollama_profile_plans_with_a_keyless_local_model_for_free_and_falls_back_offline():
    settings = load_settings("ollama")
    planners = provider_chain(settings, Modality.planner)

    assert check_providers(settings) == []  # no key asked for, and priced
    assert [p.name for p in planners] == ["openai-compatible", "local"]
    assert planners[0].options.base_url == "http://localhost:11434/v1"
    assert planners[0].needs_key is None
    assert cost_usd("openai-compatible", planners[0].model, {"tokens": 5000},
                    price_table()) == 0.0
