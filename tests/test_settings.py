"""Settings precedence: explicit override (CLI flag, flow parameter) > environment > .env >
profile file > defaults."""

from __future__ import annotations

import pytest

from config.settings import load_settings


def test_the_profile_file_sets_what_nothing_else_does(monkeypatch):
    monkeypatch.delenv("REELFLOW_VIDEO", raising=False)
    assert load_settings("cloud").video == ["veo", "replicate:wan-video/wan-2.2-i2v-fast",
                                             "kenburns"]
    assert load_settings("local").video == ["kenburns"]


def test_the_environment_beats_the_profile_and_a_flag_beats_both(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("REELFLOW_FPS=24\nREELFLOW_SHORT_SIDE=360\n")
    monkeypatch.setenv("REELFLOW_VIDEO", "kenburns")
    monkeypatch.setenv("REELFLOW_SHORT_SIDE", "480")
    settings = load_settings("cloud", short_side=720)
    assert settings.video == ["kenburns"]  # environment over the profile
    assert settings.fps == 24  # .env over the default
    assert settings.short_side == 720  # the flag over the environment over .env


def test_the_profile_comes_from_the_flag_then_the_environment(monkeypatch):
    monkeypatch.setenv("REELFLOW_PROFILE", "cloud")
    assert load_settings().profile == "cloud"
    assert load_settings("local").profile == "local"


def test_an_unknown_profile_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="no profile named 'studio'"):
        load_settings("studio")
