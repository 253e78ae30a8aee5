"""The story bible's files and the graph it makes: bad profiles are refused in one line naming
the file and field (exit 2, nothing stored or published); a character in no scene costs nothing;
a picture no provider can make becomes a placeholder the next run replaces."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from config.bible import BibleError, load_profiles
from config.settings import Settings
from flows.cli import main
from tasks.graph import run_step, video_graph
from tasks.providers.base import ImageGenerator, ProviderError
from tasks.storyboard import Character, Location, Storyboard

GOOD = "id: kit\nname: Kit\nappearance: a tall girl\nvoices: {espeak: en-us+f2}\n"


def reelflow(monkeypatch, capsys, *args) -> tuple[int, str]:
    """`reelflow ARGS` in this process: its exit code and what it wrote to stderr."""
    monkeypatch.setattr(sys, "argv", ["reelflow", *args])
    for variable in ("REELFLOW_CHARACTERS", "REELFLOW_LOCATIONS"):  # --characters sets them
        monkeypatch.setenv(variable, "")
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def picture(path: Path, size=(40, 50)) -> Path:
    Image.new("RGB", size, "#336699").save(path)
    return path


BAD_PROFILES = {
    "not YAML": ("id: kit\nname: [unclosed\n", "kit.yaml: not valid YAML"),
    "no id": ("name: Kit\n", "kit.yaml: id: missing"),
    "no name": ("id: kit\n", "kit.yaml: name: missing"),
    "a list": ("- id: kit\n", "kit.yaml: a profile is a mapping"),
    "bad voice": (GOOD.replace("en-us+f2", "en us; rm -rf"), "kit.yaml: voices.espeak: String "
                  "should match pattern"),
    "missing picture": (GOOD + "references: [front.png]\n", "kit.yaml: references.0: "
                        "'front.png' does not exist"),
    "not a picture": (GOOD + "references: [notes.png]\n", "kit.yaml: references.0: "
                      "'notes.png' is not a picture"),
    "huge file": (GOOD + "references: [huge.png]\n", "kit.yaml: references.0: 'huge.png' is "
                  "over 20 MB"),
    "too many pixels": (GOOD + "references: [wide.png]\n", "kit.yaml: references.0: 'wide.png' "
                        "is 8193x2 px, over 8192 px"),
    "leaves its folder": (GOOD + "references: [../outside.png]\n", "kit.yaml: references.0: "
                          "'../outside.png' leaves the profile's folder"),
    "absolute path": (GOOD + "sprites: {talking: /etc/passwd, listening: a.png}\n",
                      "kit.yaml: sprites.talking: '/etc/passwd' leaves the profile's folder"),
    "one sprite": (GOOD + "sprites: {talking: a.png}\n", "kit.yaml: sprites: give both"),
    "bad colour": (GOOD + "color: red\n", "kit.yaml: color: String should match pattern"),
}


@pytest.mark.parametrize("name", BAD_PROFILES)
def test_a_bad_profile_exits_2_naming_file_and_field_and_stores_nothing(
        name, workspace, monkeypatch, capsys, tmp_path):
    text, message = BAD_PROFILES[name]
    folder = tmp_path / "cast"
    folder.mkdir()
    (folder / "kit.yaml").write_text(text)
    (folder / "notes.png").write_text("these are notes, not a picture")
    (folder / "huge.png").write_bytes(b"\0" * (20 * 1024 * 1024 + 1))
    picture(folder / "wide.png", (8193, 2))
    picture(folder / "a.png")
    picture(tmp_path / "outside.png")

    code, err = reelflow(monkeypatch, capsys, "make", "cats", "--cast", "kit",
                         "--characters", str(folder))

    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not workspace["store"].exists() and not workspace["out"].exists()


@pytest.mark.parametrize("args, message", [
    (["--cast", "nobody"], "cast: no character 'nobody' (known: juno, mira, otto)"),
    (["--cast", "mira", "--places", "moon"], "places: no location 'moon' (known: library, "
                                             "rooftop, workshop)"),
    (["--cast", "mira", "--characters", "/no/such/folder"], "/no/such/folder: no such folder"),
])
def test_an_unknown_cast_member_place_or_folder_exits_2(args, message, workspace, monkeypatch,
                                                        capsys):
    code, err = reelflow(monkeypatch, capsys, "make", "cats", *args)
    assert (code, err.count("\n")) == (2, 1) and message in err, err
    assert not workspace["store"].exists() and not workspace["out"].exists()


def test_a_script_line_naming_someone_outside_the_cast_exits_2_quoting_the_line(
        workspace, monkeypatch, capsys, tmp_path):
    script = tmp_path / "script.md"
    script.write_text("Mira: Boxes!\nOtto: Indeed.\n\nBob: Who am I?\n")
    code, err = reelflow(monkeypatch, capsys, "make", "--script", str(script), "--cast",
                         "mira,otto")
    assert code == 2 and "'Bob: Who am I?' names 'Bob', who is not in the cast (mira, otto)" in err
    assert not workspace["store"].exists()


def test_two_profiles_with_one_id_are_refused_naming_both(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "kit.yaml").write_text(GOOD)
    with pytest.raises(BibleError, match=r"b/kit.yaml: id: 'kit' is also the id of .*a/kit.yaml"):
        load_profiles(Character, [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(BibleError, match="'mira' is also the id of"):
        (tmp_path / "a" / "kit.yaml").write_text(GOOD.replace("kit", "mira"))
        load_profiles(Character, [tmp_path / "a"])


def test_the_shipped_bible_has_three_characters_with_sprites_and_distinct_voices():
    characters, places = load_profiles(Character), load_profiles(Location)
    assert len(characters) >= 3 and len(places) >= 1
    assert all(set(c.sprites) == {"talking", "listening"} for c in characters.values())
    assert len({c.voices["espeak"] for c in characters.values()}) == len(characters)


def storyboard(cast=("mira", "otto"), unused=("juno",)) -> Storyboard:
    characters = load_profiles(Character)
    return Storyboard.model_validate({
        "title": "Boxes",
        "characters": [characters[i].model_dump(mode="json") for i in [*cast, *unused]],
        "locations": [load_profiles(Location)["workshop"].model_dump(mode="json")],
        "scenes": [
            {"id": "s001", "order": 0, "duration": 3, "cast": list(cast), "location": "workshop",
             "visual_prompt": "a box", "lines": [{"speaker": cast[0], "text": "A box!"},
                                                 {"speaker": cast[1], "text": "Indeed."}]},
            {"id": "s002", "order": 1, "duration": 3, "visual_prompt": "the end",
             "lines": [{"text": "The end."}]},
        ]})


def test_the_graph_has_nodes_only_for_who_and_what_appears_and_keyframes_need_only_references():
    steps = {step.id: step for step in video_graph(storyboard())}
    assert "ref-juno" not in steps and "sprite-juno" not in steps  # in no scene: costs nothing
    assert steps["s001-image"].needs == ("ref-mira", "ref-otto", "ref-workshop")
    assert steps["s002-image"].needs == ()
    assert {s.id for s in steps.values() if s.kind == "tts"} == {"s001-l1-tts", "s001-l2-tts",
                                                                  "s002-l1-tts"}
    order = list(steps)
    assert all(order.index(needed) < order.index(step.id)
               for step in steps.values() for needed in step.needs)


class BrokenImage(ImageGenerator):
    name = "broken"
    calls = 0

    def generate(self, request):
        BrokenImage.calls += 1
        raise ProviderError("the model is down")


def test_a_picture_no_provider_can_make_is_a_placeholder_and_the_next_run_asks_again(
        tmp_path, register_provider):
    register_provider(BrokenImage)
    prices = tmp_path / "prices.yaml"
    prices.write_text("broken: {default: {per_image: 0.0}}\nreelflow: {ffmpeg: {}}\n")
    settings = Settings(store=str(tmp_path / "store"), image=["broken"], short_side=64,
                        prices=prices)
    board = storyboard()
    step = next(s for s in video_graph(board) if s.id == "ref-workshop")

    first = run_step(step, {}, board, settings)
    again = run_step(step, {}, board, settings)

    assert (first.status, again.status) == ("placeholder", "placeholder")
    assert BrokenImage.calls == 2  # never stored under the node's key
    assert "the model is down" in first.fallbacks[0]
    from cache import open_store

    with Image.open(open_store(settings.store).blob_path(first.output("image").digest)) as shown:
        assert shown.size == (64, 64)
