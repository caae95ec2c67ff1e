# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore · tags and songs for any photo, photos for any lyric
# Opens the trained artefacts of the last `dvc repro` (notebook 02's tag detector, notebook 04's lyric models) and lets you pick a photo of the world or upload your own, see its detected objects and attributes and the top songs of the library with each lyric's words shaded by attention, go the other way from a lyric to photos, and switch model and tag group.
#
# Run all cells (*Run → Run All Cells*), then use the controls. This notebook is not a pipeline stage: it only
# reads what `make reproduce` wrote, and picks up a new `dvc repro` without a kernel restart (press *reload* to
# refresh the lists). The photos, songs and models are those of the **synthetic** world unless `params.yaml`
# points at real data; rankings are among the experiment's songs (notebook 01's subset). All logic lives in
# `i2s.explore`; the cells below only wire widgets to it.

# %% tags=["parameters"]
threads = 1        # torch threads per query: 1 measured fastest, 2 is much slower when the cores are shared
top_songs = 10     # songs shown per photo
top_images = 10    # photos shown per lyric
seed = 0           # the "random photo" button draws from this seed

# %%
import html
import time

import ipywidgets as w
import numpy as np
from IPython.display import Markdown, display

from i2s import explore, lyricdata, networks

ex = explore.Explorer(threads=threads)
rng = np.random.default_rng(seed)
missing = explore.missing_artefacts()
display(Markdown("**Ready**: every artefact is there." if not missing else
                 "**Nothing to explore yet.** Run `make reproduce` (or `dvc repro 04_attention`) in the project folder "
                 "first, then press *reload* below (no kernel restart needed). Missing:\n\n"
                 + "\n".join(f"- {m}" for m in missing)))

# %% [markdown]
# ## Photo → songs
# Pick a photo of the world (type to search, or *random photo*), or upload your own; change the model or tag group
# and the ranking follows. ▲ marks the photo's own song when it is in the library.

# %%
method = w.Dropdown(options=networks.METHODS + networks.EXTRA_METHODS, value="Our-attention", description="model")
group = w.ToggleButtons(options=lyricdata.GROUPS, value="obj-attr", description="tags")
reload_button = w.Button(description="reload", icon="refresh", tooltip="re-read the artefacts of the last dvc repro")
photo = w.Combobox(placeholder="a photo of the world, e.g. IMG_0000010.jpg", description="photo", ensure_option=True)
random_button = w.Button(description="random photo", icon="random")
upload = w.FileUpload(accept="image/*", multiple=False, description="upload a photo")
status = w.HTML()
status.add_class("i2s-status")  # where every message goes (and what the browser test reads)
figure = w.HTML(layout={"width": "420px"})
tag_box, song_box = w.HTML(), w.HTML()
state, choices = {"query": None}, {}


def report(error):
    # every failure a user can cause ends here, as one line in the widget area (never a traceback)
    status.value = f"<b style='color:#b00'>{html.escape(explore.message(error))}</b>"


def rank_songs(*_):
    if state["query"] is None:
        return
    try:
        t = time.perf_counter()
        songs = ex.songs_for(state["query"], method.value, group.value, top_songs)
        song_box.value = explore.songs_html(songs, method.value, group.value)
        status.value = f"ranked {songs.attrs['library_size']} songs in {time.perf_counter() - t:.2f} s"
    except Exception as e:
        report(e)


def show(make_query):
    try:
        t = time.perf_counter()
        q = make_query()
        tagged = time.perf_counter() - t
        figure.value = explore.figure_html(explore.detection_figure(q))
        tag_box.value = explore.tags_html(q)
    except Exception as e:
        return report(e)
    state["query"] = q
    rank_songs()
    status.value = f"tagged in {tagged:.2f} s; " + status.value


def reload(*_):
    try:
        ex.refresh()
        photo.options = tuple(ex.world_images()["image"])
        choices.clear()
        choices.update(ex.song_choices())
        lyric_pick.options = tuple(choices)
        status.value = f"{len(photo.options)} photos of the world, {len(lyric_pick.options)} songs in the library"
    except Exception as e:
        report(e)


method.observe(rank_songs, "value")
group.observe(rank_songs, "value")
photo.observe(lambda c: c["new"] and show(lambda: ex.tag_image(c["new"])), "value")
random_button.on_click(lambda _: photo.options and setattr(photo, "value", str(rng.choice(photo.options))))
upload.observe(lambda c: c["new"] and show(lambda: ex.tag_image(c["new"][-1]["content"].tobytes(), c["new"][-1]["name"])),
               "value")
reload_button.on_click(reload)

# %% [markdown]
# ## Lyric → photos
# Pick a song of the library or type some lyric words; the photos of the experiment are ranked for it by the model
# and tag group chosen above. ▲ marks the song's own photos.

# %%
lyric_pick = w.Combobox(placeholder="a song of the library: title — artist", description="song", ensure_option=True)
lyric_text = w.Textarea(placeholder="…or type lyric words here", layout={"width": "480px", "height": "70px"})
find_button = w.Button(description="find photos", icon="search")
photo_box = w.HTML()


def find_photos(*_):
    lyric = lyric_text.value.strip() or choices.get(lyric_pick.value)
    if not lyric:
        return report("pick a song or type some lyric words")
    try:
        t = time.perf_counter()
        photo_box.value = explore.images_html(ex.images_for(lyric, method.value, group.value, top_images))
        status.value = f"ranked the photos in {time.perf_counter() - t:.2f} s"
    except Exception as e:
        report(e)


find_button.on_click(find_photos)
lyric_pick.observe(lambda c: c["new"] and find_photos(), "value")

# %%
reload()
display(w.VBox([w.HBox([method, reload_button]), group, w.HBox([photo, random_button, upload]), status,
                w.HBox([figure, tag_box]), song_box,
                w.HTML("<h3>Lyric → photos</h3>"), w.HBox([lyric_pick, find_button]), lyric_text, photo_box]))
if photo.options:  # a first example (a photo whose song is in the library), so that Run All shows every part
    try:
        photo.value = ex.world_images().query("in_library")["image"].iloc[0]
        lyric_pick.value = lyric_pick.options[0]
    except Exception as e:
        report(e)
