"""The embedded world: exact counts, determinism, loader agreement, grounded scene graphs."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from i2s import render, synth, text, worldtruth
from i2s import shuttersong as data


def test_counts_at_scale_one_are_the_papers():
    c = synth.target_counts(1.0)
    assert (c["raw_rows"], c["triplets"], c["songs"], c["moods"]) == (36646, 16973, 6373, 3158)
    rng = np.random.default_rng(0)
    occ = synth.song_occurrences(c, rng)
    assert len(occ) == 6373 and occ.sum() == 16973
    assert ((occ >= 5).sum(), occ[occ >= 5].sum()) == (586, 8849)
    assert ((occ < 5).sum(), occ[occ < 5].sum()) == (5787, 8124)
    assert (occ > 50).sum() == 28
    fav = synth.favourite_counts(16973, c, rng)
    assert (fav.min(), fav.max()) == (1, 8964)
    assert ((fav >= 3).sum(), (fav >= 10).sum()) == (6043, 1547)


@pytest.mark.parametrize("scale", [0.01, 0.05, 0.3])
def test_counts_hold_at_other_scales(scale):
    c = synth.target_counts(scale)
    occ = synth.song_occurrences(c, np.random.default_rng(1))
    assert occ.sum() == c["triplets"] and len(occ) == c["songs"]
    assert (occ >= 5).sum() == c["songs_ge5"] and (occ > 50).sum() == c["songs_gt50"]


def test_fix_sum_refuses_the_impossible():
    with pytest.raises(ValueError, match="cannot split"):
        synth._fix_sum(np.ones(3, int), 100, 1, 4, np.random.default_rng(0))


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "params.json":
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(tiny_world, tmp_path):
    again = tmp_path / "again"
    synth.generate(again, synth.WorldParams(seed=7, scale=0.01, scene_graph_images=12, jobs=2))
    assert _digest(again) == _digest(tiny_world)
    other = tmp_path / "other"
    synth.generate(other, synth.WorldParams(seed=8, scale=0.01, scene_graph_images=12, jobs=1))
    assert _digest(other) != _digest(tiny_world)


def test_scene_graph_set_size_leaves_the_songs_world_alone(tiny_world, tmp_path):
    fewer = tmp_path / "fewer"
    synth.generate(fewer, synth.WorldParams(seed=7, scale=0.01, scene_graph_images=5, jobs=1))
    assert _digest(fewer / "shuttersong") == _digest(tiny_world / "shuttersong")
    assert (fewer / "truth" / "songs.csv").read_bytes() == (tiny_world / "truth" / "songs.csv").read_bytes()
    graphs = [json.loads(line) for line in (fewer / "scene_graphs" / "scene_graphs.jsonl").read_text().splitlines()]
    assert len(graphs) == 5 and {g["split"] for g in graphs} <= {"train", "val", "test"}


def test_loader_agrees_with_the_generator(tiny_world):
    kept, rej = data.load_shuttersong(tiny_world / "shuttersong")
    assert worldtruth.loader_vs_truth(rej, tiny_world / "truth").empty
    c = synth.target_counts(0.01)
    st = data.dataset_stats(kept, rej)
    assert (st["triplets"], st["songs"], st["moods"], st["songs_ge5"]) == (c["triplets"], c["songs"], c["moods"], c["songs_ge5"])
    assert len(kept) + st["rejected"] == c["raw_rows"]
    # every kind of abnormal row the world makes is present (the loader knows more kinds than the world makes)
    assert set(rej["reason"]) == set(synth.WorldParams().abnormal_mix) and set(rej["reason"]) <= set(data.REASONS)


def test_lyrics_have_the_papers_shape(tiny_world):
    songs = pd.read_csv(tiny_world / "truth" / "songs.csv", keep_default_na=False)
    lyr = pd.read_csv(tiny_world / "shuttersong" / "lyrics.csv", keep_default_na=False)
    en = lyr.merge(songs[(songs.language == "en") & (songs.lyric_status == "ok")], on=["title", "artist"])
    n = en["lyric"].str.split().map(len)
    assert n.between(50, 400).all()  # 80-300 written words (the chorus repeats counted), markers and ad-libs
    tags = {r["tag"] for r in render.load_objects()}
    words = [w for t in en["lyric"] for w in text.tokenize(t)]
    direct = np.mean([w in tags for w in words])
    assert 0 < direct < 0.15, "lyrics should name what photos show only now and then (the content gap)"
    weak = en[en.weak]
    assert len(weak) > 0


def test_scene_graphs_are_visual_genome_shaped(tiny_world):
    lines = (tiny_world / "scene_graphs" / "scene_graphs.jsonl").read_text().splitlines()
    assert len(lines) == 12
    attrs = {a["attribute"] for a in render.load_attributes()}
    tags = {r["tag"] for r in render.load_objects()}
    for line in lines:
        g = json.loads(line)
        assert g["split"] in {"train", "val", "test"}
        for o in g["objects"]:
            assert 0 <= o["x"] and 0 <= o["y"] and o["x"] + o["w"] <= 160 and o["y"] + o["h"] <= 160
            assert o["w"] > 0 and o["h"] > 0
            assert o["names"][0] in tags
            assert set(o["attributes"]) <= attrs, set(o["attributes"]) - attrs


def test_vocabularies_fit_the_paper():
    tags = {r["tag"] for r in render.load_objects()}
    attrs = render.load_attributes()
    assert 150 < len(tags) <= 266
    assert 40 < len(attrs) <= 249
    scenes = render.load_scenes()
    used = set(scenes["generic"]) | set(scenes["people"]) | {o for t in scenes["themes"].values() for o in t["objects"]}
    assert used <= tags, used - tags


@pytest.mark.parametrize("rgb,name", [((220, 30, 30), "red"), ((30, 60, 210), "blue"), ((40, 170, 60), "green"),
                                      ((250, 250, 250), "white"), ((10, 10, 10), "black"), ((128, 128, 128), "gray"),
                                      ((240, 120, 200), "pink"), ((120, 70, 30), "brown")])
def test_colour_names(rgb, name):
    assert render.colour_of(np.array([rgb] * 5, np.uint8)) == name


def test_recolour_changes_the_colour_attribute():
    cp = 0x1F34E  # red apple
    g = render.glyph_atlas()[cp]
    assert render.dominant_colour(g) == "red"
    assert render.dominant_colour(render.recolour(g, "blue")) == "blue"


def test_selfie_is_dominated_by_one_close_up():
    spec = render.SceneSpec("room", [("cup", 0x1F964), ("face", 0x1F600)], selfie=True, seed=(1, 2, 3))
    _, objs, info = render.render_scene(spec)
    face = [o for o in objs if o["names"] == ["face"]][0]
    assert info["selfie"] and face["w"] * face["h"] > 0.25 * 160 * 160
