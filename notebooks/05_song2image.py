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
# # 05 · Song2image retrieval: Table 3 and Figure 9
# The reverse task: a lyric query ranks the test images of dataset † (unseen songs). Schwarz et al.'s baseline pools the lyric's word vectors and compares them with the image's tag words in the same space, nothing learnt; Our (no attention) maps the lyric into the tag space and ranks the images by cosine. Table 3 beside the paper's, and example queries (Fig. 9).
#
# Paper: Li, Hu, Lu, *Image2song*, Section 5.3. The photos, lyrics and tags are those of the **synthetic** world
# (stage `00_world`) and notebook 02's detector: every number below is a synthetic result, shown next to the
# paper's, never in its place.

# %% tags=["parameters"]
world_truth = "data/00_world/truth"  # data_stats.world_truth; empty for real data (labels say so)
vectors = "glove-6b-50d"   # lyric_model section: word vectors and the lyric encoder's training
hidden = 32
mlp_hidden = 128
max_tokens = 0
loss = "mse"
lr = 0.001
rho = 0.9
eps = 1e-08
batch_pairs = 100
max_epochs = 60
patience = 5
val_fraction = 0.1
chrono = 200              # chrono initialisation of the LSTM gates (memories up to 200 steps)
threads = 1
group = "obj-attr"         # song2image section: the tag group of Table 3
top_k = 5                  # Schwarz: the image's top-K tag words
seeds = 3                  # Our runs with seeds seed, seed+1, ...
seed = 0
backend = "local"          # parallel section: where the runs go (local processes, or "dask" + scheduler)
n_jobs = 2
scheduler = ""
device = "auto"            # the lyric models: a GPU when there is one, else the CPU
examples = 4               # Figure 9 lyric queries ...
top_images = 4             # ... with their top images

# %%
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from i2s import (artefacts, devices, experiments, figures, lyricdata, metrics, networks, oracle, parallel, paths,
                 scoring, song2image, stage, tables, training, tuning)

STAGE = "05_song2image"
READS = ("subset", "splits", "tags", "tuned_settings")  # notebooks 01's and 02's; Our's setting chosen on validation (03)
stage.check(STAGE, globals())  # the runner's parameter checks, also when run on its own in JupyterLab
SPLIT = "dagger"           # Section 5.3: dataset †
t_start = time.perf_counter()
torch.set_num_threads(threads)
subset, splits, tag_table, kv = lyricdata.load_experiment(vectors)
cfg = tuning.tuned(networks.Config.from_params(**globals()), tuning.read_best(), "Our")  # the parameters cell's settings,
# with Our's learning rate and width chosen on validation (stage 03_tuning)
ours = tables.source_label(bool(world_truth))
data = lyricdata.build_data(subset, tag_table, group, kv, top_k, max_tokens)
display(pd.Series(asdict(cfg), name="setting").to_frame())

# %% [markdown]
# ## Queries and candidates
# The test songs of dataset † are the queries; the candidates are all their images (5 per song), so every query has
# several correct images and a rank counts the **closest** correct one (Section 5.1's Med r). Ties count against
# the method.

# %%
idx = lyricdata.split_indices(data, splits, SPLIT, seed, val_fraction)
songs, images = idx["pool"], idx["test"]
display(tables.save_table(song2image.setup_table(data, songs, images), STAGE, "setup"))
random_ranking = song2image.chance(data, songs, images)
display(Markdown("Random ranking: " + ", ".join(f"{n} = {v:.1f}" for n, v in random_ranking.items())))

# %% [markdown]
# ## Schwarz et al.: pooled lyric words against the image's tag words
# The lyric's word vectors are averaged (the same frozen vectors as every model here); so are the word vectors of the
# image's top-K tags (the detector's tags, as the paper does for a fair comparison); the relevance is their cosine.
# Nothing is learnt, so it has no seed.

# %%
s_schwarz = song2image.schwarz_scores(data, songs, images)
r_schwarz = song2image.song2image_ranks(s_schwarz, data, songs, images)

# %% [markdown]
# ## Our: the baseline model (no attention), trained on the † training songs
# One model per seed (the training of notebook 03: RMSprop, `lyric_model`'s loss, early stopping on a validation
# part of train); every test image's tag vector is compared by cosine with every test lyric's projection.

# %%
jobs = training.grid_jobs(["Our"], [group], [SPLIT], seeds, seed, keep=SPLIT)
jobs = [{**j, "keep_model": True} for j in jobs]  # every seed's model scores the images
t0 = time.perf_counter()
results = training.run_grid(jobs, {group: data}, splits, cfg, parallel.engine(backend, n_jobs, scheduler), threads,
                            desc="Our (song2image)", device=devices.resolve(device))
grid_s = time.perf_counter() - t0
s_ours = {r["seed"]: scoring.score(r["model"], data, images, songs).T for r in results}
r_ours = {k: song2image.song2image_ranks(s, data, songs, images) for k, s in s_ours.items()}
display(Markdown(f"{len(results)} runs in {grid_s / 60:.1f} min."))

# %% [markdown]
# ## Table 3: image retrieval given a lyric query (dataset †)
# Mean ± std over the seeds (Schwarz: one deterministic run). The paper prints R@K as fractions; they are shown here
# ×100, in percent like ours. The paper's value in brackets.

# %%
runs = song2image.runs_table(r_schwarz, r_ours, group, seed)
runs.to_csv(paths.output(STAGE, "runs.csv"), index=False)
long = experiments.table3(runs, ours)
tables.save_table(long.round(3), STAGE, "table3_long")
tables.save_table(long.round(3), STAGE, "headline")  # what the reports index shows
figures.beside_paper_figure(STAGE, "headline", f"Table 3: {ours} against the paper (± std over seeds)");
wide = tables.beside_paper_wide(long, ours)
tables.save_table(tables.flat_columns(wide), STAGE, "table3")
display(Markdown(f"**Table 3** ({group} tags), {ours}: mean ± std (paper)"))
display(wide)
fig = figures.beside_paper_bars(long, ours, f"Song2image, dataset † (cf. Table 3): {ours} beside the paper",
                                random_ranking)
figures.savefig(fig, STAGE, "table3_bars");

# %% [markdown]
# **Ceilings from the world's truth** (`i2s.oracle`, synthetic world only): each lyric query ranks the same candidate
# images by the generator's likelihood of their detected tags under the query song's photo model (from its true
# signature, from its theme only, from what its lyric reveals), its closest own image counted as for the methods.

# %%
truth = paths.resolve(world_truth) if world_truth else None
ceil = {}
if truth is not None and oracle.is_world_of(subset, truth):
    for kind in oracle.KINDS:
        s_or = oracle.scores(tag_table, subset, truth, [data.images[i] for i in images], [data.songs[j] for j in songs],
                             kind).T
        ceil[kind] = song2image.song2image_ranks(s_or, data, songs, images)
    display(tables.save_table(oracle.ceiling_table(ceil, song2image.TABLE3_METRICS).round(2), STAGE, "oracle_ceilings"))
else:
    display(Markdown("No world truth (real data): no oracle."))

# %%
boot = experiments.table3_bootstrap(np.stack(list(r_ours.values())), r_schwarz, metrics.BOOTSTRAP_SAMPLES, seed)
display(tables.save_table(boot.round(4), STAGE, "bootstrap_our_vs_schwarz").round(3))
found = tables.agreement(long, ours, "Our", "Schwarz")
display(Markdown(f"**Agreement with the paper**: Our beats Schwarz in **{found['ours']}** of {found['cells']} metrics here "
                 f"(paired bootstrap over the {len(songs)} queries above: `p_not_better` is the share of resamples where Our "
                 f"is not better), in {found['paper']} of {found['cells']} in the paper's Table 3."))

# %% [markdown]
# ## Figure 9: lyric queries and their top images (the song's own images outlined in red)
# Our, first seed.

# %%
first = min(s_ours)
queries = song2image.song2image_queries(s_ours[first], data, songs, images, subset, examples, top_images)
fig = figures.song2image_examples(queries, title=f"Song2image examples, Our (top {top_images}), {ours}")
figures.savefig(fig, STAGE, "fig9_examples");

# %% [markdown]
# ## Which songs find their images
# Per query, the rank of its closest own image under Our (mean over seeds) and Schwarz: the paper notes that songs
# without words related to their photos stay hard for both.

# %%
titles = subset.drop_duplicates("song_id").set_index("song_id")["title"]
per_query = song2image.per_query_ranks(data, songs, titles, r_ours, r_schwarz)
tables.save_table(per_query.round(2), STAGE, "per_query_ranks")
corr = per_query[["rank Our (mean over seeds)", "rank Schwarz"]].corr(method="spearman").iloc[0, 1]
display(per_query.sort_values("rank Our (mean over seeds)").head(8))
display(Markdown(f"Spearman correlation of the two methods' per-query ranks: {corr:.2f} "
                 f"({'the same songs tend to be easy for both' if corr > 0.3 else 'the methods find different songs easy'})."))

# %% [markdown]
# ## Metrics

# %%
metrics_out = artefacts.write_metrics(STAGE, {
    **experiments.table3_metrics(runs, boot, found),
    **{f"oracle/{k}/{m}": float(v) for k, r in ceil.items()
       for m, v in metrics.summary(r, song2image.TABLE3_METRICS).items()},
    "queries": len(songs), "candidates": len(images), "seeds": seeds, "grid_s": grid_s,
    "wall_s": time.perf_counter() - t_start, "synthetic": bool(world_truth)})
len(metrics_out)
