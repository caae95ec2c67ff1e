"""Issue 13: bad input, bad parameters and untrusted files. Nothing lost, nothing silently wrong, no code run.

One test per case of the issue. Every loader test checks that rows in = kept + rejected.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from i2s import imagefiles
from i2s import shuttersong as data

EN = ("Oh baby I remember the summer night we danced under the stars and the ocean waves were singing "
      "our song forever and ever I will hold you close tonight and never let you go away again ") * 3
HEADER = "image,title,artist,favorite_count,mood\n"


def _jpeg_bytes(size=(20, 20), value=128) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _dataset(root: Path, triplets: str | bytes, images=("a.jpg", "b.jpg"), lyrics=None) -> Path:
    """A dataset folder: the given triplets.csv text, a lyric for ('Summer Night', 'Ava'), small JPEGs."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name in images:
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "images" / name).write_bytes(_jpeg_bytes())
    (root / "triplets.csv").write_bytes(triplets if isinstance(triplets, bytes) else triplets.encode())
    pd.DataFrame(lyrics or [("Summer Night", "Ava", EN)], columns=["title", "artist", "lyric"]).to_csv(
        root / "lyrics.csv", index=False)
    return root


def _load(root: Path, rows_in: int, **kw):
    """Load and check that every row of triplets.csv is kept or rejected exactly once."""
    kept, rej = data.load_shuttersong(root, **kw)
    trip = rej[rej["file"] == "triplets.csv"]
    assert len(kept) + len(trip) == rows_in
    assert sorted([*kept["row"], *trip["row"]]) == list(range(rows_in))
    return kept, rej


def _reasons(rej) -> dict:
    r = rej[rej["file"] == "triplets.csv"]
    return dict(zip(r["row"], r["reason"]))


# ---- case 1: CSV dialects -------------------------------------------------------------------------------
GOOD = "a.jpg,Summer Night,Ava,3,happy\n"


@pytest.mark.parametrize("text,kept_rows,rejected", [
    # an unquoted comma in the first data row: that row is rejected, not the whole file read shifted by a column
    (HEADER + "a.jpg,Summer, Night,Ava,3,happy\n" + "b.jpg,Summer Night,Ava,4,\n", [1], {0: "bad_field_count"}),
    # a trailing comma on every data row (a common export style), with or without one on the header
    (HEADER + "a.jpg,Summer Night,Ava,3,happy,\nb.jpg,Summer Night,Ava,4,,\n", [0, 1], {}),
    (HEADER.replace("\n", ",\n") + "a.jpg,Summer Night,Ava,3,happy,\nb.jpg,Summer Night,Ava,4,,\n", [0, 1], {}),
    # a row short of a required field is rejected; one short of the optional mood reads mood ''
    (HEADER + "a.jpg,Summer Night,Ava\nb.jpg,Summer Night,Ava,4\n", [1], {0: "bad_field_count"}),
    # a UTF-8 BOM, a pandas index column, blank lines
    ("\ufeff" + HEADER + GOOD, [0], {}),
    ("," + HEADER + "0," + GOOD + "\n1,b.jpg,Summer Night,Ava,4,\n", [0, 1], {}),
    # a header and no rows
    (HEADER, [], {}),
])
def test_case1_csv_dialects_keep_or_reject_each_row(tmp_path, text, kept_rows, rejected):
    rows_in = len([line for line in text.splitlines()[1:] if line.strip()])
    kept, rej = _load(_dataset(tmp_path, text), rows_in)
    assert list(kept["row"]) == kept_rows
    assert _reasons(rej) == rejected
    assert (kept["title"] == "Summer Night").all() and (kept["favorite_count"] >= 3).all()
    if rejected:
        assert "line 2" in rej["detail"].iat[0] and "fields" in rej["detail"].iat[0]


@pytest.mark.parametrize("content,message", [
    (b"", r"triplets\.csv: empty file"),
    (HEADER.replace("mood", "title").encode() + GOOD.encode(), r"triplets\.csv: duplicate column.*'title'"),
    ((HEADER + "a.jpg,Café Night,Ava,3,\n").encode("latin-1"), r"triplets\.csv: not UTF-8.*line 2.*Latin-1"),
    ((HEADER + GOOD).encode("utf-16"), r"triplets\.csv: UTF-16"),
    ((HEADER + 'a.jpg,"Summer Night,Ava,3,\n' + GOOD).encode(), r"triplets\.csv: unreadable CSV at line 3"),
])
def test_case1_files_that_cannot_be_read_are_errors_naming_file_and_line(tmp_path, content, message):
    with pytest.raises(data.DataError, match=message):
        data.load_shuttersong(_dataset(tmp_path, content))


# ---- case 2: values that were silently wrong ------------------------------------------------------------
def test_case2_no_wrapped_counts_no_unicode_digits_and_distinct_songs_get_distinct_ids(tmp_path, monkeypatch):
    text = HEADER + "".join([
        "a.jpg,Summer Night,Ava,9223372036854775807,\n",    # 0 the largest int64: kept exactly
        "a.jpg,Summer Night,Ava,9223372036854775808,\n",    # 1 2^63: would wrap to a negative count
        "a.jpg,Summer Night,Ava,18446744073709551617,\n",   # 2 above 2^64
        "a.jpg,Summer Night,Ava,١٢,\n",                     # 3 Arabic-Indic digits
        "a.jpg,Summer Night,Ava,４,\n",                      # 4 full-width digit
        "a.jpg,Summer Night,Ava, 007 ,\n",                  # 5 kept as 7
        "b.jpg,Love|Me,X,2,\n",                             # 6 kept: its own lyric
        "b.jpg,Love,Me|X,2,\n",                             # 7 no lyric of its own
    ])
    lyrics = [("Summer Night", "Ava", EN), ("Love|Me", "X", EN)]
    kept, rej = _load(_dataset(tmp_path, text, lyrics=lyrics), 8)
    assert kept["favorite_count"].tolist() == [2**63 - 1, 7, 2]
    assert kept["favorite_count"].dtype == np.int64
    assert _reasons(rej) == {1: "bad_favorite_count", 2: "bad_favorite_count", 3: "bad_favorite_count",
                             4: "bad_favorite_count", 7: "missing_lyric"}
    assert data.song_key("Love|Me", "X") != data.song_key("Love", "Me|X")
    assert data.song_key("Love\\", "|X") != data.song_key("Love\\|", "X")
    # ids of ordinary titles are the ones the loader gave before
    assert data.song_key("Summer Night", "Ava Harlow") == "song_4ce175a31e"
    assert data.song_key(" summer  night", "AVA HARLOW") == data.song_key("Summer Night", "Ava Harlow")
    # the id is a short hash: should two songs ever share one, the load stops instead of merging them
    with monkeypatch.context() as m:
        m.setattr(data, "text_id", lambda text: "song_same")
        with pytest.raises(data.DataError, match=r"songs 'summer night\|ava' and 'love\\\\\|me\|x' both get id song_same"):
            data.load_shuttersong(tmp_path)


# ---- case 3: image paths --------------------------------------------------------------------------------
def test_case3_paths_in_subfolders_are_found_and_paths_leaving_images_are_rejected(tmp_path):
    (tmp_path / "x.jpg").write_bytes(_jpeg_bytes())  # outside images/: must never be read for a row
    text = HEADER + "".join([
        "sub/x.jpg,Summer Night,Ava,3,\n",            # 0 kept: the file in the subfolder
        "sub/deeper/y.jpg,Summer Night,Ava,3,\n",     # 1 kept
        "../x.jpg,Summer Night,Ava,3,\n",             # 2 leaves images/
        f"{tmp_path / 'x.jpg'},Summer Night,Ava,3,\n",  # 3 absolute
        "sub/../../x.jpg,Summer Night,Ava,3,\n",      # 4 leaves images/ on the way
        "x.jpg,Summer Night,Ava,3,\n",                # 5 not in images/ (only sub/x.jpg is)
        ",Summer Night,Ava,3,\n",                     # 6 no name at all
    ])
    kept, rej = _load(_dataset(tmp_path, text, images=("sub/x.jpg", "sub/deeper/y.jpg")), 7)
    assert kept["image_path"].tolist() == [str(tmp_path / "images" / "sub" / "x.jpg"),
                                           str(tmp_path / "images" / "sub" / "deeper" / "y.jpg")]
    assert _reasons(rej) == {2: "image_outside_images_dir", 3: "image_outside_images_dir",
                             4: "image_outside_images_dir", 5: "missing_image", 6: "image_outside_images_dir"}
    kept, rej = _load(tmp_path, 7, check_images=False)  # the path rule holds without the image check too
    assert set(_reasons(rej)) == {2, 3, 4, 6}


# ---- case 4: one bad image rejects its row, it does not stop the load ------------------------------------------
def _tiff_with_text_strip_offsets() -> bytes:
    """A TIFF whose StripOffsets tag claims to be text: Pillow raises TypeError decoding it."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, "TIFF")
    b = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", b[4:8])[0]
    for k in range(struct.unpack("<H", b[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack("<H", b[entry:entry + 2])[0] == 273:
            b[entry + 2:entry + 4] = struct.pack("<H", 2)  # type ASCII
    return bytes(b)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (a decompression bomb's signature)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    b = bytearray(buf.getvalue())
    b[16:24] = struct.pack(">II", width, height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_case4_corrupt_tiff_and_decompression_bombs_are_rejections_of_their_rows(tmp_path):
    _dataset(tmp_path, HEADER + "".join(f"{n},Summer Night,Ava,{k + 1},\n" for k, n in enumerate(
        ["a.jpg", "bad.tif", "bomb.png", "big.png", "pcx.pcx"])))
    (tmp_path / "images" / "bad.tif").write_bytes(_tiff_with_text_strip_offsets())
    (tmp_path / "images" / "bomb.png").write_bytes(_png_claiming(20_000, 20_000))  # over Pillow's own refusal
    (tmp_path / "images" / "big.png").write_bytes(_png_claiming(10_000, 9_000))     # over our limit only
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "pcx.pcx")  # a format the pipeline does not read
    kept, rej = _load(tmp_path, 5)
    assert list(kept["row"]) == [0]
    assert _reasons(rej) == {1: "unreadable_image", 2: "image_too_large", 3: "image_too_large", 4: "unreadable_image"}
    detail = rej.set_index("row")["detail"]
    assert detail[1].startswith("bad.tif: ") and "TypeError" in detail[1]
    assert "10000×9000 px is over the limit" in detail[3]


# ---- case 5: one image reader ---------------------------------------------------------------------------------
def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _png16_rgb(rgb: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    h, w, _ = rgb.shape
    rows = b"".join(b"\0" + rgb[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


GREY16 = np.array([[0, 257, 32896, 65535]], np.uint16)  # 0, 1, 128 and 255 in 8 bits
P = Image.new("P", (4, 1))
P.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
P.putdata([0, 1, 0, 1])
FORMATS = {  # name: (file bytes, the RGB of its pixels, tolerance)
    "rgb jpeg": (_save(Image.new("RGB", (8, 8), (200, 30, 30)), "JPEG"), [(200, 30, 30)] * 4, 6),
    "grey png": (_save(Image.new("L", (4, 1), 100), "PNG"), [(100, 100, 100)] * 4, 0),
    "bilevel png": (_save(Image.new("1", (4, 1), 1), "PNG"), [(255, 255, 255)] * 4, 0),
    "16-bit grey png": (_save(Image.fromarray(GREY16), "PNG"), [(v, v, v) for v in (0, 1, 128, 255)], 0),
    "16-bit grey tiff": (_save(Image.fromarray(GREY16), "TIFF"), [(v, v, v) for v in (0, 1, 128, 255)], 0),
    "16-bit rgb png": (_png16_rgb(np.array([[[65535, 32896, 0]] * 4], np.uint16)), [(255, 128, 0)] * 4, 0),
    "palette png": (_save(P, "PNG"), [(255, 0, 0), (0, 0, 255)] * 2, 0),
    "palette png, colour 1 transparent": (_save(P, "PNG", transparency=1), [(255, 0, 0), (255, 255, 255)] * 2, 0),
    "palette gif": (_save(P, "GIF"), [(255, 0, 0), (0, 0, 255)] * 2, 0),
    "rgba png, half transparent": (_save(Image.new("RGBA", (4, 1), (255, 0, 0, 128)), "PNG"), [(255, 127, 127)] * 4, 1),
    "grey+alpha png, transparent": (_save(Image.new("LA", (4, 1), (0, 0)), "PNG"), [(255, 255, 255)] * 4, 0),
    "cmyk jpeg": (_save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"), [(255, 0, 0)] * 4, 6),
    "cmyk tiff": (_save(Image.new("CMYK", (4, 1), (0, 255, 255, 0)), "TIFF"), [(255, 0, 0)] * 4, 0),
    "bmp": (_save(Image.new("RGB", (4, 1), (1, 2, 3)), "BMP"), [(1, 2, 3)] * 4, 0),
    "webp (lossless)": (_save(Image.new("RGB", (4, 1), (9, 99, 199)), "WEBP", lossless=True), [(9, 99, 199)] * 4, 0),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_case5_the_reader_gives_8bit_rgb_for_every_mode(name):
    content, colours, tol = FORMATS[name]
    rgb = imagefiles.read_image(content, name=name)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.flags.writeable
    got = rgb[0, :4].astype(int)
    assert np.abs(got - np.array(colours)).max() <= tol, got.tolist()


def test_case5_exif_orientation_max_side_and_tensors_agree(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, 20:] = 255  # left half black
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display", as phones write it
    path = tmp_path / "phone.jpg"
    Image.fromarray(a).save(path, "JPEG", exif=exif)
    rgb = imagefiles.read_image(path)
    assert rgb.shape == (40, 20, 3)  # shown upright: taller than wide
    assert rgb[:18].mean() < 20 and rgb[22:].mean() > 235  # the left half is now on top
    tensor = imagefiles.load_image(path)
    assert tensor.shape == (3, 40, 20) and tensor.dtype.is_floating_point is False
    np.testing.assert_array_equal(tensor.permute(1, 2, 0).numpy(), rgb)
    assert imagefiles.read_image(path, max_side=10).shape == (10, 5, 3)
    assert imagefiles.read_image(path.read_bytes(), max_side=10).shape == (10, 5, 3)
    assert [t.shape for t in imagefiles.load_images([path, path], threads=2, max_side=20)] == [(3, 20, 10)] * 2


def test_case5_unusable_files_are_one_error_type_naming_the_file(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big)
    with pytest.raises(imagefiles.ImageFileError, match=r"big\.png: 64×64 px is over the limit of 1,000 px") as e:
        imagefiles.read_image(big, max_pixels=1000)
    assert e.value.reason == "image_too_large"
    with pytest.raises(imagefiles.ImageFileError, match=r"nothere\.jpg: no such file") as e:
        imagefiles.read_image(tmp_path / "nothere.jpg")
    assert e.value.reason == "missing_image"
    with pytest.raises(imagefiles.ImageFileError, match=r"upload\.jpg: the file is empty"):
        imagefiles.read_image(b"", name="upload.jpg")
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(imagefiles.ImageFileError, match=r"notes\.jpg: not a JPEG, PNG"):
        imagefiles.read_image(tmp_path / "notes.jpg")
    with pytest.raises(imagefiles.ImageFileError, match=r"float\.tif: .*'F'"):
        imagefiles.read_image(_save(Image.new("F", (4, 4), 0.5), "TIFF"), name="float.tif")
    # Pillow would open this as EPS and hand it to Ghostscript (a PostScript program run); the reader refuses it
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    assert Image.open(io.BytesIO(eps)).format == "EPS"
    with pytest.raises(imagefiles.ImageFileError, match="not a JPEG"):
        imagefiles.read_image(eps, name="photo.jpg")
    assert issubclass(imagefiles.ImageFileError, ValueError)


def test_case5_the_loader_rejects_exactly_what_the_reader_rejects(tmp_path):
    names = ["grey16.png", "float.tif", "photo.eps.jpg", "a.jpg"]
    _dataset(tmp_path, HEADER + "".join(f"{n},Summer Night,Ava,{k + 1},\n" for k, n in enumerate(names)))
    (tmp_path / "images" / "grey16.png").write_bytes(FORMATS["16-bit grey png"][0])
    (tmp_path / "images" / "float.tif").write_bytes(_save(Image.new("F", (4, 4), 0.5), "TIFF"))
    (tmp_path / "images" / "photo.eps.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n")
    kept, rej = _load(tmp_path, 4)
    assert list(kept["image"]) == ["grey16.png", "a.jpg"]
    assert _reasons(rej) == {1: "unreadable_image", 2: "unreadable_image"}
    for path in kept["image_path"]:
        imagefiles.read_image(path)


def _mutants(good: bytes, rng: np.random.Generator, n: int):
    """Truncations at evenly spaced lengths, then copies with 1-3 flipped bits."""
    for cut in np.linspace(0, len(good) - 1, n).astype(int):
        yield "cut", good[:cut]
    for _ in range(n):
        b = bytearray(good)
        for i in rng.integers(0, len(b), rng.integers(1, 4)):
            b[i] ^= 1 << int(rng.integers(8))
        yield "flip", bytes(b)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_case5_fuzzed_image_bytes_end_as_rejections_never_as_crashes(tmp_path, fmt):
    a = (np.add.outer(np.arange(48), np.arange(64)) * 3 % 256).astype(np.uint8)
    good = _save(Image.fromarray(np.dstack([a, a[::-1], 255 - a])), fmt)
    full = imagefiles.read_image(good)
    rng = np.random.default_rng(13)
    names = []
    for k, (kind, content) in enumerate(_mutants(good, rng, 60)):
        try:
            rgb = imagefiles.read_image(content, name=f"m{k}")
        except imagefiles.ImageFileError:
            pass
        else:  # a flipped bit in compressed data may still decode; a cut file never decodes to other pixels
            assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
            assert kind == "flip" or np.array_equal(rgb, full)
        names.append(f"m{k}.{fmt.lower()}")
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "images" / names[-1]).write_bytes(content)
    _dataset(tmp_path, HEADER + "".join(f"{n},Summer Night,Ava,{k + 1},\n" for k, n in enumerate(names)), images=())
    _, rej = _load(tmp_path, len(names))
    assert set(_reasons(rej).values()) <= {"unreadable_image", "image_too_large"}
    assert len(rej) > 30  # the cuts, at least


# ---- case 6: word vectors ----------------------------------------------------------------------------------
class _Pickled:
    """Unpickling this creates a file: it shows whether loading a file ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_case6_word_vectors_told_by_content_and_bad_values_are_errors_naming_file_and_line(tmp_path):
    from gensim.models import KeyedVectors

    from i2s import text
    kv = KeyedVectors(4)
    kv.add_vectors(["sun", "sea", "snow"], np.arange(12, dtype=np.float32).reshape(3, 4))
    kv.save_word2vec_format(str(tmp_path / "text-named.bin"), binary=False)
    kv.save_word2vec_format(str(tmp_path / "binary-named.txt"), binary=True)
    (tmp_path / "glove.txt").write_text("sun 0 1 2 3\nsea 4 5 6 7\nsnow 8 9 10 11\n")  # no header line
    for name in ("text-named.bin", "binary-named.txt", "glove.txt"):
        loaded = text.vectors(str(tmp_path / name))
        assert loaded.index_to_key == ["sun", "sea", "snow"], name
        np.testing.assert_array_equal(loaded.vectors, kv.vectors)
    bad = {"nan.txt": ("3 4\nsun 0 1 2 3\nsea nan 5 6 7\nsnow 8 9 10 11\n", r"nan\.txt: 1 vector.*NaN.*line 3.*'sea'"),
           "inf.bin": ("2 4\nsun 0 1 2 3\nsea 1e39 5 6 7\n", r"inf\.bin: 1 vector.*infinite.*line 3"),
           "short.txt": ("2 4\nsun 0 1 2 3\nsea 5 6 7\n", r"short\.txt.*line 3 has 3 values where the vectors have 4"),
           "long.txt": ("2 4\nsun 0 1 2 3\nsea 4 5 6 7 8\n", r"long\.txt.*line 3 has 5 values"),
           "count.txt": ("1 4\nsun 0 1 2 3\nsea 4 5 6 7\n", r"count\.txt: the header says 1 words but 2 lines"),
           "twice.txt": ("2 4\nsun 0 1 2 3\nsun 4 5 6 7\n", r"twice\.txt: 1 repeated word"),
           "size.txt": ("2 0\n", r"size\.txt: line 1: vector size 0"),
           "prose.txt": ("just some words\n", r"prose\.txt: line 1 is neither")}
    for name, (content, message) in bad.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(text.VectorFileError, match=message):
            text.vectors(str(tmp_path / name))
    cut = tmp_path / "cut.bin"
    cut.write_bytes((tmp_path / "binary-named.txt").read_bytes()[:-5])
    with pytest.raises(text.VectorFileError, match=r"cut\.bin \(binary word2vec\): unexpected end"):
        text.vectors(str(cut))
    # a pickle (what gensim's own .save writes) is refused, and nothing in it runs
    import pickle
    marker = tmp_path / "code-ran"
    (tmp_path / "vectors.kv").write_bytes(pickle.dumps(_Pickled(marker)))
    with pytest.raises(text.VectorFileError, match=r"vectors\.kv: a pickle"):
        text.vectors(str(tmp_path / "vectors.kv"))
    assert not marker.exists()


# ---- case 7: the generator loses nothing ------------------------------------------------------------------
TINY = {"seed": 7, "scale": 0.01, "scene_graph_images": 12, "jobs": 1}


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_case7_bad_parameters_are_refused_before_the_disk_is_touched_and_nothing_else_is_deleted(tmp_path, tiny_world):
    import shutil

    from i2s import synth
    world = tmp_path / "world"
    shutil.copytree(tiny_world, world)
    before = _snapshot(world)
    for bad, message in [({"scale": -1}, r"world\.scale = -1: must be a number ≥ 0\.001"),
                         ({"difficulty": 2}, r"world\.difficulty = 2: must be a number from 0 to 1"),
                         ({"scale": float("nan")}, r"world\.scale = nan"),
                         ({"seed": 1.5}, r"world\.seed = 1\.5"),
                         ({"jobs": True}, r"world\.jobs = True"),
                         ({"image_size": 8}, r"world\.image_size = 8"),
                         ({"abnormal_mix": {"typo_reason": 1.0}}, r"abnormal_mix: unknown key\(s\) \['typo_reason'\]"),
                         ({"scael": 0.5}, r"world: unknown key\(s\) \['scael'\]")]:
        with pytest.raises(synth.ParamsError, match=message):
            synth.generate(world, synth.world_params({**TINY, **bad}))
        assert _snapshot(world) == before, bad
    params = tmp_path / "params.yaml"
    params.write_text("world:\n  seed: 7\n  difficulty: 2\n")
    with pytest.raises(synth.ParamsError, match=r"world\.difficulty = 2"):
        synth.main(["--params", str(params), "--out", str(world)])
    assert _snapshot(world) == before
    # a folder that is not a world is never emptied, whatever --out says
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    params.write_text("world:\n  seed: 7\n  scale: 0.01\n  scene_graph_images: 12\n  jobs: 1\n")
    with pytest.raises(FileExistsError, match=r"my-notes: not empty and not a world"):
        synth.main(["--params", str(params), "--out", str(mine)])
    assert _snapshot(mine) == {"thesis.tex": b"years of work"}
    # a failure half-way leaves the previous world as it was, and no partial folder behind
    real = synth.render_all
    try:
        synth.render_all = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full"))
        with pytest.raises(RuntimeError, match="disk full"):
            synth.generate(world, synth.world_params(TINY))
    finally:
        synth.render_all = real
    assert _snapshot(world) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-notes", "params.yaml", "world"]
    # a previous world is replaced, by the same bytes for the same params
    synth.generate(world, synth.world_params(TINY))
    assert _snapshot(world) == before and (world / synth.WORLD_MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-notes", "params.yaml", "world"]


# ---- case 8: the same params give the same bytes in any process ------------------------------------------------
def _world_in_a_process(out: Path, hash_seed: int, jobs: int) -> None:
    import os
    import subprocess
    import sys

    from i2s import synth
    code = ("import sys; from i2s import synth; synth.generate(sys.argv[1], synth.WorldParams(seed=7, scale=0.01, "
            "scene_graph_images=70, jobs=int(sys.argv[2])))")
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(Path(synth.__file__).parents[1])}
    subprocess.run([sys.executable, "-c", code, str(out), str(jobs)], env=env, check=True, capture_output=True)


def test_case8_world_files_are_byte_identical_across_processes_hash_seeds_and_jobs(tmp_path):
    _world_in_a_process(tmp_path / "a", hash_seed=1, jobs=1)
    _world_in_a_process(tmp_path / "b", hash_seed=2, jobs=2)  # 2 processes render the photos (≥ 64 of each set)
    a, b = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) > 400
    assert [name for name in a if a[name] != b[name]] == []


# ---- case 9: a large file ---------------------------------------------------------------------------------
def test_case9_a_100k_row_file_keeps_or_rejects_every_row(tmp_path):
    """(benchmarks/bench_loader.py times this size.) Every 97th row has a bad count, every 101st a field too many."""
    rows = 100_000
    images = [f"d{k % 4}/IMG_{k:03d}.jpg" for k in range(20)]
    fav = [f"n/a {k}" if k % 97 == 0 else str(k + 1) for k in range(rows)]  # no two rows alike
    lines = [f"{images[k % 20]},Summer Night,Ava,{fav[k]},{'happy,extra' if k % 101 == 0 else ''}\n" for k in range(rows)]
    kept, rej = _load(_dataset(tmp_path, HEADER + "".join(lines), images=images), rows)
    reasons = rej["reason"].value_counts().to_dict()
    bad_fields = len(range(0, rows, 101))
    assert reasons == {"bad_field_count": bad_fields,
                       "bad_favorite_count": len(range(0, rows, 97)) - len(range(0, rows, 97 * 101))}
    assert len(kept) == rows - sum(reasons.values())


# ---- parameters: one schema, checked at the start of every stage ------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("key,value,message", [
    ("world.difficulty", 2, "world.difficulty = 2: must be a number from 0 to 1"),
    ("lyric_model.batch_pairs", 0, "lyric_model.batch_pairs = 0: must be a whole number ≥ 2"),
    ("lyric_model.max_epochs", 0, "lyric_model.max_epochs = 0: must be a whole number ≥ 1"),
    ("attention.top_k", 0, "attention.top_k = 0: must be a whole number ≥ 1"),
    ("lyric_model.loss", "foo", "lyric_model.loss = 'foo': must be one of"),
    ("tagger.random_init_baseline", True, "tagger.random_init_baseline = True: must be 0 or 1"),
    ("supplementary.variants", {"x": {"methods": ["Our"], "groups": ["obj"], "pooling": "avg"}},
     "supplementary.variants.x.pooling = 'avg'"),
    ("mrcca.k_min", 30, "mrcca.k_min = 30 is above mrcca.k_max"),
])
def test_params_break_with_a_message_naming_the_key(key, value, message):
    import copy

    from i2s import params
    p = copy.deepcopy(params.load(REPO / "params.yaml"))
    section, name = key.split(".")
    p[section][name] = value
    with pytest.raises(params.ParamsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        params.validate(p)


def test_unknown_params_keys_and_sections_are_refused_and_the_committed_file_is_valid():
    import copy

    from i2s import params
    p = params.load(REPO / "params.yaml")
    params.validate(copy.deepcopy(p))
    for where, bad in (("lyric_model", {"hiden": 3}), (None, {"extra": {}})):
        q = copy.deepcopy(p)
        (q[where] if where else q).update(bad)
        with pytest.raises(params.ParamsError, match="unknown key"):
            params.validate(q)


def test_the_runner_and_a_notebook_give_the_same_message(tmp_path, monkeypatch):
    import copy

    import yaml

    from i2s import params, stage
    p = copy.deepcopy(params.load(REPO / "params.yaml"))
    p["attention"]["top_k"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.setenv("I2S_ROOT", str(tmp_path))
    with pytest.raises(params.ParamsError) as runner:
        stage.run("04_attention", check=False)
    with pytest.raises(params.ParamsError) as notebook:   # a notebook's parameters cell, run in JupyterLab
        stage.check("04_attention", {"top_k": 0, "hidden": 32})
    assert str(runner.value) == str(notebook.value) == "params.yaml: attention.top_k = 0: must be a whole number ≥ 1"


# ---- untrusted checkpoints run no code ---------------------------------------------------------------------------
class _Payload:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED",))


def test_a_detector_checkpoint_with_a_pickled_payload_is_refused_without_running_it(tmp_path, monkeypatch):
    import torch

    from i2s import detector
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "detector.pt"
    torch.save({"config": {}, "state_dict": {}, "history": _Payload()}, bad)
    with pytest.raises(ValueError, match="without running code"):
        detector.load_checkpoint(bad)
    assert not (tmp_path / "PWNED").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        detector.load_checkpoint(tmp_path / "junk.pt")


def test_the_explorer_reads_uploads_with_the_pipelines_reader():
    from i2s import explore
    grey16 = np.full((32, 32), 30000, np.uint16)   # mid grey in 16 bits: Pillow's plain convert clips it to white
    buf = io.BytesIO()
    Image.fromarray(grey16).save(buf, "PNG")
    pixels = explore.decode_image(buf.getvalue(), "grey16.png")
    assert int(pixels.float().mean()) == pytest.approx(30000 / 257, abs=1)
    with pytest.raises(ValueError, match="'notes.txt' cannot be used: not a JPEG"):
        explore.decode_image(b"hello", "notes.txt")
