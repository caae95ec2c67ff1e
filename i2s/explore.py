"""Interactive exploration of the trained artefacts (notebooks/explore.ipynb wires widgets to these functions).

An `Explorer` reads what the last `dvc repro` wrote (the experiment subset and refined triplets of notebook 01,
the detector and tag table of notebook 02, the lyric models of notebook 04) and answers two kinds of query:

- image → songs: any photo of the world or an uploaded one is tagged by the detector (boxes, object and attribute
  tags), then every song of the library is ranked by a chosen method and tag group; attentive models also give
  each lyric word's attention weight for that photo.
- lyric → images: a song of the library, or typed text, ranks every tagged photo of the experiment.

The library is the experiment's songs (notebook 01's subset, the songs every model was built on); a world photo's
true song is marked when it is one of them. Artefacts are re-read when a file changed on disk, so a new
`dvc repro` needs no kernel restart.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import html
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import (artefacts, detector, figures, imagefiles, lyricdata, networks, params, paths, persistence, scoring, tagtable, text)

MAX_SIDE = 640       # uploads are shrunk to this longest side: the detector works at 160-267 px anyway
TOP_SONGS = 10
TOP_IMAGES = 10
SONG_CACHE = 2         # models whose library encodings are kept (Explorer.song_blocks)
TYPED = "(typed lyric)"  # song id of a typed lyric appended to the library for one query


class MissingArtefacts(FileNotFoundError):
    """A stage output that exploration needs is not there yet."""


class ArtefactError(ValueError):
    """A stage output is there but cannot be used: corrupt, half-written, or not matching the other outputs."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()).rstrip(".")


def message(error: BaseException) -> str:
    """Any error a query raised, as one line for the widget area (the explorer's own errors say what to do)."""
    if isinstance(error, (ValueError, FileNotFoundError)):
        return _one_line(error)
    return f"unexpected error ({type(error).__name__}): {_one_line(error) or 'no message'}"


@contextlib.contextmanager
def reading(name: str = "", file: Path | None = None):
    """Errors while reading one of the artefacts exploration needs (NEEDED's names; `file`: the file of it being
    read) as an ArtefactError naming the file and the stage that rewrites it; the explorer's own errors pass."""
    try:
        yield
    except (MissingArtefacts, ArtefactError):
        raise
    except Exception as e:
        if not name:
            raise
        path, stage = required_artefacts()[name]
        raise ArtefactError(f"the {name} ({file or path}) cannot be used: {_one_line(e)}. Rerun `dvc repro {stage}` "
                            "(or `make reproduce`), then press reload") from e


NEEDED = {"experiment subset": "subset", "refined triplets": "triplets", "tag detector": "detector",
          "tag table": "tags", "lyric models": "lyric_models"}  # what exploration reads (i2s.artefacts names)


def required_artefacts() -> dict[str, tuple[Path, str]]:
    """What exploration reads: name → (path, the stage that writes it)."""
    return {k: (artefacts.path(a), artefacts.ARTEFACTS[a].stage) for k, a in NEEDED.items()}


def missing_artefacts() -> list[str]:
    """One line per missing artefact (empty when everything is there)."""
    out = []
    for name, (path, stage) in required_artefacts().items():
        empty = path.is_dir() and not any(path.glob("*__*.pt"))
        if not path.exists() or empty:
            out.append(f"{name}: {path} (written by stage {stage})")
    return out


def require_artefacts() -> None:
    """Raise MissingArtefacts saying what to run when a stage output is missing."""
    missing = missing_artefacts()
    if missing:
        raise MissingArtefacts(
            "Exploration needs the trained artefacts of the pipeline, and these are missing:\n  - "
            + "\n  - ".join(missing)
            + f"\nRun `make reproduce` (or `dvc repro 04_attention`) in {paths.root()} first, then run this cell "
              "again (no kernel restart needed).")


def decode_image(content: bytes, name: str = "upload", max_side: int = MAX_SIDE) -> torch.Tensor:
    """An uploaded file as a 3×H×W uint8 tensor, read by the pipeline's one image reader (EXIF orientation,
    bit depth, palette, alpha, size limit; longest side ≤ max_side); ValueError naming the file when it is not an
    image the pipeline can read."""
    if not content:
        raise ValueError(f"{name!r} is empty: upload a photo (JPEG, PNG, ...)")
    try:
        with warnings.catch_warnings():  # corrupt EXIF and the like: Pillow warns and reads on; the pixels are what count
            warnings.simplefilter("ignore")
            arr = imagefiles.read_image(bytes(content), name=name, max_side=max_side)
    except imagefiles.ImageFileError as e:
        raise ValueError(f"{name!r} cannot be used: {_one_line(e.problem)}; "
                         "upload a photo (JPEG, PNG, ...)") from None
    except Exception as e:  # a format Pillow identifies but fails to decode raises whatever its plugin hits
        raise ValueError(f"{name!r} could not be decoded ({type(e).__name__}: {_one_line(e)}); "
                         "upload a photo (JPEG, PNG, ...)") from None
    if min(arr.shape[:2]) < 8:
        raise ValueError(f"{name!r} is {arr.shape[1]}×{arr.shape[0]} px: too small to tag")
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


@dataclasses.dataclass
class Query:
    """One tagged photo: its pixels, the detector's output, its tags and (world photos) its song."""
    name: str
    image: torch.Tensor              # 3×H×W uint8
    prediction: dict                 # tagging.predict's dict: boxes, labels, scores, attributes, obj_vec, attr_vec
    table: pd.DataFrame              # tagtable.tag_table's one row (top tags per group, every probability)
    song_id: str | None = None       # the photo's song in the world, if known

    def vector(self, group: str) -> tuple[np.ndarray, list[str]]:
        """The photo's tag vector of one group and its words (notebook 02's representation)."""
        return tagtable.tag_matrix(self.table, group)

    def top(self, group: str) -> list[str]:
        """The photo's top tags of one group."""
        return self.table[f"top_{group}"].iloc[0].split()


def query_data(data: lyricdata.Data, vectors: np.ndarray) -> lyricdata.Data:
    """`data` with the given N × D tag vectors as its only images (same songs): models score them unchanged."""
    vectors = np.atleast_2d(np.asarray(vectors, np.float32))
    if vectors.shape[1] != len(data.tag_words):
        raise ValueError(f"{vectors.shape[1]} tag probabilities for {len(data.tag_words)} tag words")
    k = data.top_tags.shape[1]
    index = {w: i for i, w in enumerate(data.words)}
    top = [[index.get(w, 1) for w in row] for row in tagtable.top_tags(vectors, data.tag_words, k)]
    return dataclasses.replace(data, images=[f"query {i}" for i in range(len(vectors))],
                               image_song=torch.full((len(vectors),), -1), targets=torch.tensor(vectors),
                               top_tags=torch.tensor(top, dtype=torch.long))


def with_lyric(data: lyricdata.Data, lyric: str, max_tokens: int = 0) -> lyricdata.Data:
    """`data` with a typed lyric appended as one more song (id TYPED); ValueError if no word of it is known."""
    tokens = text.tokenize(lyric)
    index = {w: i for i, w in enumerate(data.words)}
    ids = text.encode(tokens, index, max_tokens)
    if not tokens or (ids == 1).all():
        raise ValueError("none of the typed words is in the models' vocabulary (after dropping stop words and "
                         "non-alphanumeric tokens): type a few more lyric words")
    n = max(data.tokens.shape[1], len(ids))
    tok = torch.zeros((len(data.songs) + 1, n), dtype=torch.long)
    tok[:-1, :data.tokens.shape[1]] = data.tokens
    tok[-1, :len(ids)] = torch.from_numpy(ids)
    return dataclasses.replace(data, songs=[*data.songs, TYPED], token_lists=[*data.token_lists, tokens],
                               tokens=tok, lengths=torch.cat([data.lengths, torch.tensor([len(ids)])]))


def _levels(weights: np.ndarray) -> np.ndarray:
    """Colour-map positions of attention weights: log2 of n·s_t stretched to the lyric's largest deviation."""
    w = np.asarray(weights, float)
    log = np.log2(np.maximum(w * len(w), 1e-12))
    return 0.5 + 0.5 * log / max(float(np.abs(log).max()), 1e-3)


@torch.no_grad()
def library_scores(model: networks.LyricModel, blocks: list[tuple[np.ndarray, dict]], query: lyricdata.Data) -> np.ndarray:
    """The first image of `query` against every song of `Explorer.song_blocks` (`scoring.similarity`): what
    `scoring.score` computes for one image, from song encodings made once."""
    model.eval()
    q = model.query(query.top_tags[:1]) if model.attends else None
    out = torch.empty(sum(len(cols) for cols, _ in blocks))
    for cols, st in blocks:
        pred = model.pairs(st, q, grid=True) if model.attends else model.pairs(st, None)  # (1 ×) S × D
        out[torch.as_tensor(cols)] = scoring.similarity(model, query.targets[:1], pred)[0]
    return out.numpy()


def shade(weights: np.ndarray) -> list[str]:
    """Background colours of words by attention relative to uniform (n·s_t): red above, blue below, white at
    uniform; the scale stretches to the lyric's largest deviation (as `figures.attention_text`)."""
    import matplotlib
    cmap = matplotlib.colormaps["RdBu_r"]
    return [matplotlib.colors.to_hex(cmap(c)) for c in _levels(weights)]


def lyric_html(words: list[str], weights: np.ndarray | None = None) -> str:
    """A lyric's words as HTML, each shaded by its attention weight when there are weights."""
    if weights is None:
        return " ".join(html.escape(w) for w in words)
    rel = np.asarray(weights, float) * len(weights)
    ink = ["white" if abs(c - 0.5) > 0.35 else "black" for c in _levels(weights)]  # legible on the darkest shades
    return " ".join(f'<span style="background:{c};color:{k};padding:0 2px" title="weight × n = {r:.2f}">'
                    f"{html.escape(w)}</span>" for w, c, k, r in zip(words, shade(weights), ink, rel))


def image_uri(image: torch.Tensor | str | Path, size: int = 160) -> str:
    """A PNG data URI of an image tensor or file (for HTML tables)."""
    from PIL import Image
    pixels = imagefiles.read_image(image) if isinstance(image, (str, Path)) else image.permute(1, 2, 0).numpy()
    with Image.fromarray(pixels) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Explorer:
    """The trained artefacts of the last `dvc repro`, reloaded when a file changes, and the queries on them."""

    def __init__(self, vectors: str | None = None, threads: int | None = None):
        self.vectors = vectors
        if threads:
            torch.set_num_threads(threads)
        self._stamp = None
        self._cache: dict = {}

    # ---- artefacts --------------------------------------------------------------------------------------------
    def _stamps(self) -> tuple:
        out = []
        for path, _ in required_artefacts().values():
            for p in (sorted(path.glob("*.pt")) if path.is_dir() else [path]):
                st = p.stat()
                out.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def refresh(self) -> bool:
        """Check the artefacts (MissingArtefacts if any is missing); drop everything cached when a file changed.
        True when the next query reloads."""
        require_artefacts()
        try:
            stamp = self._stamps()
        except FileNotFoundError as e:  # a file went between the check and the stat: a dvc repro is writing
            raise MissingArtefacts(f"{e.filename} vanished while being read: is `dvc repro` running? Try again "
                                   "when it has finished.") from None
        if stamp != self._stamp:
            self._cache.clear()
            self._stamp = stamp
            return True
        return False

    def _get(self, key, make, artefact: str = ""):
        if key not in self._cache:
            with reading(artefact):
                self._cache[key] = make()
        return self._cache[key]

    def model_files(self) -> pd.DataFrame:
        """Every saved lyric model: method, group, file (in METHODS × GROUPS order)."""
        self.refresh()
        rows = [{"method": m, "group": g, "file": persistence.model_file(m, g)}
                for m in networks.METHODS + networks.EXTRA_METHODS for g in lyricdata.GROUPS
                if persistence.model_file(m, g).exists()]
        return pd.DataFrame(rows, columns=["method", "group", "file"])

    def methods(self) -> list[str]:
        """Methods with at least one saved model."""
        return list(dict.fromkeys(self.model_files()["method"]))

    def groups(self) -> list[str]:
        """Tag groups with at least one saved model."""
        return [g for g in lyricdata.GROUPS if g in set(self.model_files()["group"])]

    def subset(self) -> pd.DataFrame:
        """Notebook 01's experiment subset (the library's songs and their photos)."""
        return self._get("subset", lambda: artefacts.read("subset"), "experiment subset")

    def library(self) -> pd.DataFrame:
        """The songs every query ranks: song_id, title, artist, lyric, one row per song (sorted by id, as in Data)."""
        return self._get("library", lambda: self.subset().drop_duplicates("song_id").sort_values("song_id")
                         [["song_id", "title", "artist", "lyric"]].reset_index(drop=True))

    def song_choices(self) -> dict[str, str]:
        """'title — artist' → song_id for every library song (titles alone can repeat)."""
        lib = self.library()
        return dict(zip(lib["title"] + " — " + lib["artist"], lib["song_id"]))

    def world_images(self) -> pd.DataFrame:
        """Every photo of the refined data: image, image_path, song_id, title, and whether its song is in the library."""
        def make():
            t = artefacts.read("triplets")
            t = t.drop_duplicates("image")[["image", "image_path", "song_id", "title", "artist"]].reset_index(drop=True)
            return t.assign(in_library=t["song_id"].isin(set(self.library()["song_id"])))
        return self._get("world", make, "refined triplets")

    def tag_table(self) -> pd.DataFrame:
        """Notebook 02's tag table."""
        return self._get("tags", lambda: artefacts.read("tags"), "tag table")

    def detector(self) -> detector.TagDetector:
        """Notebook 02's trained detector (eval mode)."""
        return self._get("detector", lambda: detector.load_checkpoint(artefacts.path("detector"))[0], "tag detector")

    def _vectors_source(self) -> str:
        if self.vectors:
            return self.vectors
        try:
            source = params.get("lyric_model.vectors")
        except (FileNotFoundError, KeyError):
            source = text.GLOVE
        return source if source == text.GLOVE else str(paths.resolve(source))  # a file: relative to the project

    def data(self, group: str) -> lyricdata.Data:
        """The experiment's Data of one tag group, built as notebook 04 builds it (top-K and lyric length from the
        group's saved models)."""
        def make():
            files = self.model_files()
            files = files[files["group"] == group]
            if files.empty:
                raise MissingArtefacts(f"no lyric model of the {group!r} tag group in {artefacts.path('lyric_models')}; "
                                       "rerun `dvc repro 04_attention`")
            cfg = networks.Config.from_params(**persistence.read_model_file(files["file"].iloc[0])["config"])
            return lyricdata.build_data(self.subset(), self.tag_table(), group, self.word_vectors(), cfg.top_k,
                                        cfg.max_tokens)
        return self._get(("data", group), make, "lyric models")

    def word_vectors(self):
        """The word vectors of `lyric_model.vectors` (or the Explorer's), as gensim KeyedVectors."""
        source = self._vectors_source()
        try:
            return text.vectors(source)
        except Exception as e:
            raise ArtefactError(f"the word vectors {source!r} cannot be read ({_one_line(e)}): point lyric_model.vectors "
                                "in params.yaml at the word2vec file notebook 04 used") from None

    def model(self, method: str, group: str) -> networks.LyricModel:
        """The saved model of one method and tag group."""
        self._check(method, group)
        return self._get(("model", method, group), lambda: self._load_model(method, group, self.data(group)),
                         "lyric models")

    def _load_model(self, method: str, group: str, data: lyricdata.Data) -> networks.LyricModel:
        file = persistence.model_file(method, group)
        with reading("lyric models", file):
            try:
                return persistence.load_model(file, data)
            except RuntimeError as e:
                if "size mismatch" not in str(e):  # the weights' shapes follow the word vectors'
                    raise
                raise ArtefactError(f"the word vectors {self._vectors_source()!r} have {data.embedding.shape[1]} "
                                    f"dimensions, not those the saved {method} model ({group} tags) was trained on: "
                                    "point lyric_model.vectors back at the vectors of the last `dvc repro "
                                    "04_attention`, or rerun it") from None

    def song_blocks(self, method: str, group: str) -> list[tuple[np.ndarray, dict]]:
        """The library's song-side encodings under one model, in `scoring.score`'s length-sorted blocks: they do not
        depend on the photo, so a query only pairs them with its tags. The last SONG_CACHE models are kept."""
        key = ("blocks", method, group)
        if key not in self._cache:
            model, data = self.model(method, group), self.data(group)
            order = np.argsort(data.lengths.numpy(), kind="stable")
            with torch.no_grad():
                blocks = [(order[s:s + scoring.SONG_BLOCK], scoring.encode_songs(model, data, order[s:s + scoring.SONG_BLOCK]))
                          for s in range(0, len(order), scoring.SONG_BLOCK)]
            for old in [k for k in self._cache if k[0] == "blocks"][:-(SONG_CACHE - 1) or None]:
                del self._cache[old]  # an attentive model's encodings take tens of MB at the paper's scale
            self._cache[key] = blocks
        return self._cache[key]

    def train_songs(self, method: str, group: str) -> set[str]:
        """The songs a saved model was trained on (the rest of the library is unseen by it)."""
        self._check(method, group)
        return self._get(("train", method, group), lambda: set(
            persistence.read_model_file(persistence.model_file(method, group))["train_songs"]), "lyric models")

    def _check(self, method: str, group: str):
        self.refresh()
        if not persistence.model_file(method, group).exists():
            have = ", ".join(f"{m}/{g}" for m, g in self.model_files()[["method", "group"]].itertuples(index=False))
            raise ValueError(f"no saved {method} model for the {group!r} tags (saved: {have or 'none'})")

    # ---- image → songs ----------------------------------------------------------------------------------------
    def tag_image(self, image, name: str | None = None) -> Query:
        """Tag a photo: a world image name (e.g. 'IMG_0000010.jpg'), a file path, uploaded bytes or a uint8 tensor."""
        self.refresh()
        song = None
        if isinstance(image, torch.Tensor):
            pixels, name = image, name or "image"
        elif isinstance(image, (bytes, bytearray, memoryview)):
            name = name or "upload"
            pixels = decode_image(image, name)
        else:
            world = self.world_images().set_index("image")
            key = str(image)
            if key in world.index:
                path, song = Path(world.at[key, "image_path"]), world.at[key, "song_id"]
                if not path.exists():  # a moved project: the world's own layout
                    path = artefacts.path("shuttersong_world") / "images" / key
            else:
                path = Path(key)
                if not path.is_file():
                    raise ValueError(f"{key!r} is neither a photo of the world (see world_images()) nor a file")
            name = name or path.name
            pixels = decode_image(path.read_bytes(), name)
        det = self.detector()
        with torch.no_grad():
            pred = {k: v.cpu() for k, v in det([pixels.float().div(255)])[0].items()}
        table = tagtable.tag_table([pred], pd.DataFrame({"image": [name]}), det.objects, det.attributes)
        return Query(name=name, image=pixels, prediction=pred, table=table, song_id=song)

    def songs_for(self, query: Query, method: str, group: str, k: int = TOP_SONGS) -> pd.DataFrame:
        """The top-k songs of the library for a tagged photo: rank, song_id, title, artist, score, whether it is the
        photo's song and whether the model saw it in training, its words and (attentive models) their weights.
        `attrs["true_rank"]`: the rank of the photo's song in the whole library (None if not in it)."""
        model, data = self.model(method, group), self.data(group)
        vec, words = query.vector(group)
        if words != data.tag_words:
            raise ValueError("the detector's tag words differ from the models' (rerun notebook 04 after notebook 02)")
        qd = query_data(data, vec)
        s = library_scores(model, self.song_blocks(method, group), qd)
        order = np.argsort(-s, kind="stable")
        top = order[:k]
        lib = self.library().set_index("song_id")
        seen = self.train_songs(method, group)
        weights = (scoring.attention_weights(model, qd, np.zeros(len(top), dtype=np.int64), top) if model.attends
                   else [None] * len(top))
        rows = [{"rank": r + 1, "song_id": data.songs[j], "title": lib.at[data.songs[j], "title"],
                 "artist": lib.at[data.songs[j], "artist"], "score": float(s[j]),
                 "true_song": data.songs[j] == query.song_id, "seen_in_training": data.songs[j] in seen,
                 "words": data.token_lists[j][:int(data.lengths[j])], "weights": w}
                for r, (j, w) in enumerate(zip(top, weights))]
        out = pd.DataFrame(rows)
        sidx = data.song_index()
        out.attrs["true_rank"] = (int(np.flatnonzero(order == sidx[query.song_id])[0]) + 1
                                  if query.song_id in sidx else None)
        out.attrs["library_size"] = len(data.songs)
        return out

    # ---- lyric → images ---------------------------------------------------------------------------------------
    def images_for(self, lyric: str, method: str, group: str, k: int = TOP_IMAGES) -> pd.DataFrame:
        """The top-k tagged photos of the experiment for a library song (its song_id or exact title) or typed
        lyric text: rank, image, image_path, song_id, title, score, whether the photo belongs to that song."""
        data = self.data(group)
        lib = self.library()
        by_title = dict(zip(lib["title"].str.lower(), lib["song_id"]))
        key = lyric.strip()
        song_id = key if key in data.song_index() else by_title.get(key.lower())
        if song_id is not None:
            d, model, j = data, self.model(method, group), data.song_index()[song_id]
        else:
            self._check(method, group)
            d = with_lyric(data, key, self.model(method, group).cfg.max_tokens)
            # BoW refits its tf-idf on the training songs, so the typed lyric gets its own bag of words
            with reading("lyric models"):
                model = self._load_model(method, group, d) if method == "BoW" else self.model(method, group)
            j = len(d.songs) - 1
        s = scoring.score(model, d, np.arange(len(d.images)), np.array([j]))[:, 0]
        top = np.argsort(-s, kind="stable")[:k]
        path = self.tag_table().set_index("image")["image_path"]
        titles = lib.set_index("song_id")["title"]
        song_of = [d.songs[i] for i in d.image_song.numpy()[top]]
        return pd.DataFrame({"rank": np.arange(1, len(top) + 1), "image": [d.images[i] for i in top],
                             "image_path": [path.get(d.images[i], "") for i in top], "song_id": song_of,
                             "title": [titles[x] for x in song_of], "score": s[top],
                             "of_this_song": [x == song_id for x in song_of]})


# ---- views (HTML and figures for the notebook) -------------------------------------------------------------------
def show_threshold(query: Query, least: int = 3) -> float:
    """The detector's usual display score, lowered to show the `least` best boxes when fewer pass it."""
    scores = query.prediction["scores"]
    if (scores >= detector.CONFIDENT).sum() >= least or len(scores) == 0:
        return detector.CONFIDENT
    return float(scores[:least].min())  # torchvision returns detections sorted by score


def detection_figure(query: Query, size: float = 4.0):
    """The photo with its confident detections (box, object, top attributes, score)."""
    import matplotlib.pyplot as plt
    det_objects = [c.split(":", 1)[1] for c in query.table.columns if c.startswith("obj:")]
    det_attrs = [c.split(":", 1)[1] for c in query.table.columns if c.startswith("attr:")]
    fig, ax = plt.subplots(figsize=(size, size))
    threshold = show_threshold(query)
    name = query.name.replace("$", r"\$")  # a name is plain text, never matplotlib math ($...$)
    figures.draw_detections(ax, query.image, query.prediction, det_objects, det_attrs, score=threshold,
                         title=f"{name}: detections with score ≥ {threshold:.2f}")
    fig.tight_layout()
    return fig


def figure_html(fig, width: int = 400) -> str:
    """A figure drawn to PNG (errors surface here, not later in a display hook) as an <img>, then closed."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" width="{width}">'


def tags_html(query: Query) -> str:
    """The photo's top object and attribute tags, and its song when known."""
    rows = [f"<b>objects</b>: {html.escape(', '.join(query.top('obj')))}",
            f"<b>attributes</b>: {html.escape(', '.join(query.top('attr')))}",
            f"<b>both (obj-attr)</b>: {html.escape(', '.join(query.top('obj-attr')))}"]
    threshold = show_threshold(query)
    n = int((query.prediction["scores"] >= threshold).sum())
    rows.append(f"{n} detection(s) with score ≥ {threshold:.2f} drawn; the tag vectors use every region")
    return "<br>".join(rows)


def songs_html(songs: pd.DataFrame, method: str, group: str) -> str:
    """The ranked songs as an HTML table, lyric words shaded by attention, the photo's song marked ▲."""
    true_rank, n = songs.attrs.get("true_rank"), songs.attrs.get("library_size", "?")
    note = (f"The photo's own song is at rank <b>{true_rank}</b> of {n}." if true_rank else
            "The photo's song is not in the library (an upload, or a song outside the experiment).")
    attends = songs["weights"].notna().any() if len(songs) else False
    legend = ("Lyric words shaded by attention relative to uniform: red above, blue below (hover for the value)."
              if attends else f"{html.escape(method)} has no attention: lyrics shown plain.")
    body = []
    for r in songs.itertuples():
        mark = "▲ " if r.true_song else ""
        unseen = "" if r.seen_in_training else ' <span style="color:#a60">(unseen in training)</span>'
        lyric = lyric_html(list(r.words), None if r.weights is None else np.asarray(r.weights))
        body.append(f"<tr><td>{r.rank}</td><td><b>{mark}{html.escape(str(r.title))}</b><br>"
                    f"<small>{html.escape(str(r.artist))}</small>{unseen}</td><td>{r.score:.3f}</td>"
                    f'<td><div style="max-height:5.5em;overflow-y:auto;font-size:.85em;line-height:1.5">{lyric}</div></td></tr>')
    return (f"<p><b>{html.escape(method)}</b>, {html.escape(group)} tags, library of {n} songs "
            f"(synthetic world). {note} {legend}</p><table><tr><th>#</th><th>song</th><th>cosine</th><th>lyric "
            f"(preprocessed)</th></tr>{''.join(body)}</table>")


def images_html(images: pd.DataFrame, size: int = 110) -> str:
    """The ranked photos as an HTML strip, those of the queried song marked ▲."""
    cells = []
    for r in images.itertuples():
        src = image_uri(r.image_path, size) if r.image_path and Path(r.image_path).exists() else ""
        mark = "▲ " if r.of_this_song else ""
        cells.append(f'<div style="display:inline-block;margin:3px;width:{size}px;font-size:.75em;vertical-align:top">'
                     f'<img src="{src}" width="{size}" alt="{html.escape(r.image)}"><br>{mark}{r.rank}. '
                     f"{html.escape(str(r.title))} ({r.score:.3f})</div>")
    return "<div>" + "".join(cells) + "</div><p><small>▲ a photo of the queried song.</small></p>"
