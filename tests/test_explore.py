"""Exploration (i2s.explore) on a tiny set of artefacts written the way the pipeline writes them: a detector and
its tag table, the subset and triplets, saved lyric models. No browser: the notebook only wires widgets."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from i2s import artefacts, detector, explore, lyricdata, networks, paths, persistence, scoring, tagging, tagtable

OBJECTS = ["sun", "wave", "tree", "snowman"]
ATTRIBUTES = ["blue", "white", "small"]
LYRIC_WORDS = ["surf", "tide", "coral", "sleigh", "frost", "mitten", "baby", "tonight", "dream", "heart"]
CFG = networks.Config(hidden=6, mlp_hidden=10, attention=5, top_k=3)
SAVED_GROUPS = ("obj", "obj-attr")  # attr is left out on purpose: a group without models


def _write_world(root, seed=0):
    rng = np.random.default_rng(seed)
    images_dir = root / "data" / "00_world" / "shuttersong" / "images"
    images_dir.mkdir(parents=True)
    rows = []
    for s in range(10):  # songs 0-7 form the experiment subset (the library), 8-9 only appear in the triplets
        lyric = " ".join(rng.choice(LYRIC_WORDS, size=int(rng.integers(5, 12))))
        for k in range(3):
            name = f"IMG_{s:02d}{k}.png"
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(images_dir / name)
            rows.append({"image": name, "title": f"Song {s}", "artist": f"Band {s % 3}", "song_id": f"song_{s:02d}",
                         "lyric": lyric, "image_path": str(images_dir / name)})
    triplets = pd.DataFrame(rows)
    subset = triplets[triplets["song_id"] < "song_08"]
    stats = root / "data" / "01_data_stats"
    stats.mkdir(parents=True)
    triplets.to_csv(stats / "triplets.csv", index=False)
    subset.to_csv(stats / "subset.csv", index=False)
    return subset


def _write_vectors(root):
    words = LYRIC_WORDS + OBJECTS + ATTRIBUTES
    vec = np.random.default_rng(1).normal(size=(len(words), 8))
    path = root / "vectors.txt"
    path.write_text(f"{len(words)} 8\n" + "".join(w + " " + " ".join(f"{x:.5f}" for x in v) + "\n"
                                                  for w, v in zip(words, vec)))
    return path



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    (root / "params.yaml").write_text(f"lyric_model:\n  vectors: {_write_vectors(root)}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("I2S_ROOT", str(root))
        subset = _write_world(root)
        torch.manual_seed(0)
        det = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=False, min_size=64, max_size=64)
        detector.save_checkpoint(det, artefacts.path("detector"))
        preds = tagging.predict(det, subset["image_path"].tolist(), threads=1)
        artefacts.write("tags", tagtable.tag_table(preds, subset[["image", "image_path", "song_id"]], OBJECTS, ATTRIBUTES))
        for group in SAVED_GROUPS:  # the Data a model is built on, as notebook 04 builds it
            data = lyricdata.build_data(subset, artefacts.read("tags"), group, explore.text.vectors(str(root / "vectors.txt")),
                                     CFG.top_k, CFG.max_tokens)
            for method in networks.METHODS:
                torch.manual_seed(0)
                model = networks.build_model(method, data, CFG, np.arange(5))
                persistence.save_model(model, persistence.model_file(method, group), data, method, np.arange(5))
        yield root, explore.Explorer()


def test_missing_artefacts_say_what_to_run(in_tmp_root):
    with pytest.raises(explore.MissingArtefacts, match="make reproduce") as e:
        explore.Explorer().tag_image("IMG_000.png")
    for what in ("subset.csv", "detector.pt", "tags.parquet", "04_attention/models"):
        assert what in str(e.value)


def test_a_world_photo_is_ranked_exactly_as_its_row_of_the_data(world):
    root, ex = world
    assert ex.methods() == list(networks.METHODS) and ex.groups() == list(SAVED_GROUPS)
    q = ex.tag_image("IMG_031.png")
    assert q.song_id == "song_03" and q.image.shape == (3, 64, 64) and q.top("obj")[0] in OBJECTS
    for method in networks.METHODS:
        data, model = ex.data("obj-attr"), ex.model(method, "obj-attr")
        top = ex.songs_for(q, method, "obj-attr", k=5)
        expect = scoring.score(model, data, [data.image_index()["IMG_031.png"]], np.arange(len(data.songs)))[0]
        order = np.argsort(-expect, kind="stable")
        assert top["song_id"].tolist() == [data.songs[j] for j in order[:5]]
        np.testing.assert_allclose(top["score"], expect[order[:5]], atol=1e-5)
        assert top.attrs["library_size"] == 8
        assert top.attrs["true_rank"] == int(np.flatnonzero(np.array(data.songs)[order] == "song_03")[0]) + 1
        assert top["true_song"].tolist() == (top["song_id"] == "song_03").tolist()
        assert top["seen_in_training"].tolist() == top["song_id"].isin([f"song_0{i}" for i in range(5)]).tolist()
        if model.attends:
            for w, words in zip(top["weights"], top["words"]):
                assert len(w) == len(words) and w.sum() == pytest.approx(1, abs=1e-5)
        else:
            assert top["weights"].isna().all()


def test_an_upload_is_tagged_like_the_same_world_photo_and_has_no_song(world):
    root, ex = world
    path = root / "data" / "00_world" / "shuttersong" / "images" / "IMG_052.png"
    up = ex.tag_image(path.read_bytes(), "mine.png")
    ref = ex.tag_image("IMG_052.png")
    assert up.song_id is None and up.name == "mine.png"
    np.testing.assert_allclose(up.vector("obj-attr")[0], ref.vector("obj-attr")[0], atol=1e-6)
    songs = ex.songs_for(up, "Our-attention", "obj")
    assert songs.attrs["true_rank"] is None and not songs["true_song"].any() and len(songs) == 8
    assert "not in the library" in explore.songs_html(songs, "Our-attention", "obj")
    outside = ex.tag_image("IMG_090.png")  # a world photo whose song is not in the library
    assert outside.song_id == "song_09" and ex.songs_for(outside, "Our", "obj").attrs["true_rank"] is None


def test_bad_uploads_and_names_give_clear_messages(world):
    _, ex = world
    with pytest.raises(ValueError, match="'notes.txt' cannot be used: not a JPEG"):
        ex.tag_image(b"just some text", "notes.txt")
    with pytest.raises(ValueError, match="empty"):
        ex.tag_image(b"", "nothing.jpg")
    with pytest.raises(ValueError, match="neither a photo of the world"):
        ex.tag_image("IMG_nope.png")
    with pytest.raises(ValueError, match="no saved Our model for the 'attr' tags"):
        ex.songs_for(ex.tag_image("IMG_000.png"), "Our", "attr")


def test_large_rotated_photos_are_shrunk_and_turned_upright():
    im = Image.fromarray(np.zeros((1000, 2000, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90° clockwise to view
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    t = explore.decode_image(buf.getvalue(), "photo.jpg")
    assert t.dtype == torch.uint8 and t.shape == (3, explore.MAX_SIDE, explore.MAX_SIDE // 2)


def test_lyric_to_images_for_a_song_and_for_the_same_words_typed(world):
    _, ex = world
    data = ex.data("obj")
    lyric = ex.library().set_index("song_id").at["song_02", "lyric"]
    for method in networks.METHODS:
        by_id = ex.images_for("song_02", method, "obj", k=6)
        expect = scoring.score(ex.model(method, "obj"), data, np.arange(len(data.images)), [2])[:, 0]
        order = np.argsort(-expect, kind="stable")[:6]
        assert by_id["image"].tolist() == [data.images[i] for i in order]
        assert by_id["of_this_song"].tolist() == [data.image_song[i].item() == 2 for i in order]
        assert ex.images_for("Song 2", method, "obj", k=6)["image"].tolist() == by_id["image"].tolist()
        typed = ex.images_for(lyric, method, "obj", k=6)  # the same words typed: the same lyric for every model
        np.testing.assert_allclose(typed["score"], by_id["score"], atol=1e-5)
        assert not typed["of_this_song"].any()
    with pytest.raises(ValueError, match="vocabulary"):
        ex.images_for("the and of zzzz", "Our", "obj")


def test_a_new_repro_is_picked_up_without_a_new_explorer(world):
    root, ex = world
    q = ex.tag_image("IMG_010.png")
    before = ex.songs_for(q, "Our", "obj")["score"].to_numpy()
    data = ex.data("obj")
    torch.manual_seed(123)
    retrained = networks.build_model("Our", data, CFG, np.arange(5))
    persistence.save_model(retrained, persistence.model_file("Our", "obj"), data, "Our", np.arange(5))
    after = ex.songs_for(q, "Our", "obj")
    expect = np.sort(scoring.score(retrained, data, [data.image_index()["IMG_010.png"]], np.arange(8))[0])[::-1]
    np.testing.assert_allclose(after["score"], expect, atol=1e-5)
    assert not np.allclose(after["score"].to_numpy(), before)


def test_shading_follows_the_attention_weights():
    c = explore.shade(np.array([0.5, 0.25, 0.125, 0.125]))
    rgb = [tuple(int(x[i:i + 2], 16) for i in (1, 3, 5)) for x in c]
    assert rgb[0][0] > rgb[0][2] and rgb[2][2] > rgb[2][0]  # above uniform: red; below: blue
    assert c[2] == c[3]
    page = explore.lyric_html(["a", "b<"], np.array([0.5, 0.5]))
    assert page.count("<span") == 2 and "b&lt;" in page
    assert explore.lyric_html(["a", "b"]) == "a b"


def test_views_render(world):
    _, ex = world
    q = ex.tag_image("IMG_041.png")
    songs = ex.songs_for(q, "Our-attention", "obj-attr", k=8)
    page = explore.songs_html(songs, "Our-attention", "obj-attr")
    assert page.count("<tr>") == 9 and "▲" in page and "synthetic" in page
    assert "objects" in explore.tags_html(q)
    fig = explore.detection_figure(q)
    assert fig.axes and fig.axes[0].get_title().startswith("IMG_041.png")
    strip = explore.images_html(ex.images_for("song_04", "Our", "obj", k=3))
    assert strip.count("data:image/png;base64,") == 3


# ---- the notebook's widgets: every failure a user can cause is one line in the widget area --------------------------
REPO = paths.PACKAGE.parent


@pytest.fixture
def app(world):
    """notebooks/explore.py run in this process on the test world: its widgets and callbacks, without a browser."""
    import jupytext
    ns = {}
    for cell in jupytext.read(REPO / "notebooks" / "explore.py").cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "explore.ipynb", "exec"), ns)
    assert "tagged in" in ns["status"].value or "ranked" in ns["status"].value, ns["status"].value
    return ns


def _upload(app, content: bytes, name: str):
    app["upload"].value = ({"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
                            "last_modified": __import__("datetime").datetime.now()},)
    return app["status"].value


def _error_line(status: str) -> str:
    import html
    assert "color:#b00" in status and "\n" not in status and "Traceback" not in status, status
    return html.unescape(status)


def _png(size=(64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (*size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_a_name_with_math_text_characters_is_shown_as_written(app):
    for name in ("$x$.png", "cost $5.png", r"$\frac{.png"):
        status = _upload(app, _png(), name)
        assert "tagged in" in status and "color:#b00" not in status, (name, status)
        assert "data:image/png;base64," in app["figure"].value and "library of" in app["song_box"].value


def test_bad_uploads_are_one_line_messages(app):
    assert "'notes.txt' cannot be used: not a JPEG" in _error_line(_upload(app, b"just some text", "notes.txt"))
    assert "empty" in _error_line(_upload(app, b"", "nothing.png"))
    assert "'cut.png' cannot be used: not an image that can be read" in _error_line(
        _upload(app, _png()[:300], "cut.png"))  # half a PNG
    assert "too small" in _error_line(_upload(app, _png((4, 4)), "tiny.png"))


def test_a_photo_pillow_half_reads_is_tagged_without_warnings():
    im = Image.fromarray(np.zeros((64, 64, 3), np.uint8))
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff")  # corrupt EXIF: Pillow warns, reads on
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert explore.decode_image(buf.getvalue(), "exif.jpg").shape == (3, 64, 64)


def test_a_decoder_failing_in_an_unusual_way_is_still_a_message(monkeypatch):
    import struct

    from PIL import ImageOps

    def broken(im):
        raise struct.error("unpack requires a buffer of 12 bytes")  # what Pillow's EXIF reader raises on some files
    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    with pytest.raises(ValueError, match="'odd.jpg' cannot be used: not an image that can be read \\(error: unpack requires"):
        explore.decode_image(_png(), "odd.jpg")


@pytest.fixture
def broken(world):
    """Replace an artefact file's bytes for one test (then put them back)."""
    saved = {}

    def corrupt(path, content=b"this is not a checkpoint"):
        saved.setdefault(path, path.read_bytes())
        path.write_bytes(content)
    yield corrupt
    for path, content in saved.items():
        path.write_bytes(content)


def test_a_corrupt_checkpoint_is_a_message_naming_the_stage_to_rerun(app, broken):
    broken(artefacts.path("detector"))
    app["reload"]()
    status = _error_line(_upload(app, _png(), "mine.png"))
    assert "the tag detector" in status and "detector.pt" in status and "dvc repro 02_tag_detector" in status
    broken(persistence.model_file("Our-attention", "obj-attr"), b"\x80\x02garbage")
    app["reload"]()
    app["photo"].value = ""
    app["photo"].value = "IMG_010.png"
    status = _error_line(app["status"].value)
    assert "tag detector" in status or "lyric models" in status


def test_a_corrupt_lyric_model_is_a_message(app, broken):
    broken(persistence.model_file("Our", "obj"), b"PK\x03\x04 truncated zip")
    app["reload"]()
    app["group"].value = "obj"
    app["method"].value = "Our"
    status = _error_line(app["status"].value)
    assert "the lyric models" in status and "Our__obj.pt" in status and "dvc repro 04_attention" in status


def test_missing_artefacts_are_a_message(app, world):
    root, _ = world
    tags = artefacts.path("tags")
    tags.rename(tags.with_suffix(".aside"))
    try:
        app["reload"]()
        status = _error_line(app["status"].value)
        assert "tags.parquet" in status and "make reproduce" in status
        app["method"].value = "Our"  # a query on a cached photo says the same
        assert "tags.parquet" in _error_line(app["status"].value)
    finally:
        tags.with_suffix(".aside").rename(tags)


def test_word_vectors_of_the_wrong_size_are_a_message(app, world):
    root, _ = world
    words = LYRIC_WORDS + OBJECTS + ATTRIBUTES
    path = root / "vectors_5d.txt"
    path.write_text(f"{len(words)} 5\n" + "".join(w + " 0.1 0.2 0.3 0.4 0.5\n" for w in words))
    app["ex"] = explore.Explorer(vectors=str(path))
    app["method"].value = "Our"
    status = _error_line(app["status"].value)
    assert "vectors_5d.txt' have 5 dimensions" in status and "dvc repro 04_attention" in status
    (root / "not_vectors.txt").write_text("\x00\x01 not a word2vec file")
    app["ex"] = explore.Explorer(vectors=str(root / "not_vectors.txt"))
    app["method"].value = "BoW"
    assert "the word vectors" in _error_line(app["status"].value)


def test_an_unexpected_error_is_one_line_with_its_type():
    assert explore.message(RuntimeError("x\n y.")) == "unexpected error (RuntimeError): x y"
    assert explore.message(ValueError("two\n  lines")) == "two lines"
