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
max_epochs = 40
patience = 5
val_fraction = 0.1
threads = 1
group = "obj-attr"         # song2image section: the tag group of Table 3
top_k = 5                  # Schwarz: the image's top-K tag words
seeds = 3                  # Our runs with seeds seed, seed+1, ...
seed = 0
n_jobs = 2
examples = 4               # Figure 9 lyric queries ...
top_images = 4             # ... with their top images

# %%
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from i2s import metrics, models, paths, report

STAGE = "05_song2image"
SPLIT = "dagger"           # Section 5.3: dataset †
t_start = time.perf_counter()
torch.set_num_threads(threads)
for d in (paths.data(STAGE), paths.figures(STAGE)):
    d.mkdir(parents=True, exist_ok=True)
subset, splits, tag_table, kv = models.load_experiment(vectors)
cfg = models.Config.from_params(hidden=hidden, mlp_hidden=mlp_hidden, max_tokens=max_tokens, loss=loss, lr=lr, rho=rho,
                                eps=eps, batch_pairs=batch_pairs, max_epochs=max_epochs, patience=patience,
                                val_fraction=val_fraction, top_k=top_k)
ours = report.source_label(bool(world_truth))
data = models.build_data(subset, tag_table, group, kv, top_k, max_tokens)
display(pd.Series(asdict(cfg), name="setting").to_frame())

# %% [markdown]
# ## Queries and candidates
# The test songs of dataset † are the queries; the candidates are all their images (5 per song), so every query has
# several correct images and a rank counts the **closest** correct one (Section 5.1's Med r). Ties count against
# the method.

# %%
idx = models.split_indices(data, splits, SPLIT, seed, val_fraction)
songs, images = idx["pool"], idx["test"]
per_song = np.bincount(data.image_song.numpy()[images], minlength=len(data.songs))[songs]
rng = np.random.default_rng(seed)
chance = np.concatenate([metrics.first_relevant_ranks(rng.random((len(songs), len(images))),
                                                       data.image_song.numpy()[images][None] == songs[:, None])
                         for _ in range(200)])  # 200 random scorers: what ranking by chance gives
setup = pd.DataFrame([{"what": "lyric queries (test songs)", "count": len(songs)},
                      {"what": "candidate images", "count": len(images)},
                      {"what": "correct images per query (median)", "count": float(np.median(per_song))}])
report.save_table(setup, STAGE, "setup")
display(setup)
random_ranking = metrics.summary(chance, models.SONG2IMAGE_METRICS)
display(Markdown("Random ranking: " + ", ".join(f"{n} = {v:.1f}" for n, v in random_ranking.items())))

# %% [markdown]
# ## Schwarz et al.: pooled lyric words against the image's tag words
# The lyric's word vectors are averaged (the same frozen vectors as every model here); so are the word vectors of the
# image's top-K tags (the detector's tags, as the paper does for a fair comparison); the relevance is their cosine.
# Nothing is learnt, so it has no seed.

# %%
s_schwarz = models.schwarz_scores(data, songs, images)
r_schwarz = models.song2image_ranks(s_schwarz, data, songs, images)

# %% [markdown]
# ## Our: the baseline model (no attention), trained on the † training songs
# One model per seed (the training of notebook 03: RMSprop, `lyric_model`'s loss, early stopping on a validation
# part of train); every test image's tag vector is compared by cosine with every test lyric's projection.

# %%
jobs = [{"method": "Our", "group": group, "split": SPLIT, "seed": seed + k, "keep_model": True} for k in range(seeds)]
t0 = time.perf_counter()
results = models.run_grid(jobs, {group: data}, splits, cfg, n_jobs, threads, desc="Our (song2image)")
grid_s = time.perf_counter() - t0
s_ours = {r["seed"]: models.score(r["model"], data, images, songs).T for r in results}
r_ours = {k: models.song2image_ranks(s, data, songs, images) for k, s in s_ours.items()}
display(Markdown(f"{len(results)} runs in {grid_s / 60:.1f} min."))

# %% [markdown]
# ## Table 3: image retrieval given a lyric query (dataset †)
# Mean ± std over the seeds (Schwarz: one deterministic run). The paper prints R@K as fractions; they are shown here
# ×100, in percent like ours. The paper's value in brackets.

# %%
runs = pd.DataFrame([{"method": "Schwarz", "group": group, "seed": seed, **metrics.summary(r_schwarz, models.SONG2IMAGE_METRICS)}]
                    + [{"method": "Our", "group": group, "seed": k, **metrics.summary(r, models.SONG2IMAGE_METRICS)}
                       for k, r in r_ours.items()])
runs.to_csv(paths.data(STAGE) / "runs.csv", index=False)
paper = report.paper_results()
long = models.beside_paper(runs, paper, "image2song Table 3", models.SONG2IMAGE_METRICS, ours, recall_scale=100)
report.save_table(long.round(3), STAGE, "table3_long")
report.save_table(long.round(3), STAGE, "headline")  # what the reports index shows
wide = models.beside_paper_wide(long, ours)
report.save_table(wide.set_axis([f"{g} {m}" for g, m in wide.columns], axis=1).reset_index(), STAGE, "table3")
display(Markdown(f"**Table 3** ({group} tags), {ours}: mean ± std (paper)"))
display(wide)
fig = models.beside_paper_bars(long, ours, "Song2image, dataset † (cf. Table 3): ours (synthetic) beside the paper",
                               random_ranking)
report.savefig(fig, STAGE, "table3_bars");

# %%
boot = pd.DataFrame([{"metric": n, **metrics.paired_bootstrap(np.stack(list(r_ours.values())), r_schwarz[None], n, 10_000, seed)}
                     for n in models.SONG2IMAGE_METRICS])
report.save_table(boot.round(4), STAGE, "bootstrap_our_vs_schwarz")
display(boot.round(3))
found = models.agreement(long, ours, "Our", "Schwarz")
display(Markdown(f"**Agreement with the paper**: Our beats Schwarz in **{found['ours']}** of {found['cells']} metrics here "
                 f"(paired bootstrap over the {len(songs)} queries above: `p_not_better` is the share of resamples where Our "
                 f"is not better), in {found['paper']} of {found['cells']} in the paper's Table 3."))

# %% [markdown]
# ## Figure 9: lyric queries and their top images (the song's own images outlined in red)
# Our, first seed.

# %%
first = min(s_ours)
queries = models.song2image_queries(s_ours[first], data, songs, images, subset, examples, top_images)
fig = models.song2image_examples(queries, title=f"Song2image examples, Our (top {top_images}), synthetic world")
report.savefig(fig, STAGE, "fig9_examples");

# %% [markdown]
# ## Which songs find their images
# Per query, the rank of its closest own image under Our (mean over seeds) and Schwarz: the paper notes that songs
# without words related to their photos stay hard for both.

# %%
titles = subset.drop_duplicates("song_id").set_index("song_id")["title"]
per_query = pd.DataFrame({"song": [titles[data.songs[s]] for s in songs], "rank Our (mean over seeds)":
                          np.mean(list(r_ours.values()), axis=0), "rank Schwarz": r_schwarz})
report.save_table(per_query.round(2), STAGE, "per_query_ranks")
corr = per_query[["rank Our (mean over seeds)", "rank Schwarz"]].corr(method="spearman").iloc[0, 1]
display(per_query.sort_values("rank Our (mean over seeds)").head(8))
display(Markdown(f"Spearman correlation of the two methods' per-query ranks: {corr:.2f} "
                 f"({'the same songs tend to be easy for both' if corr > 0.3 else 'the methods find different songs easy'})."))

# %% [markdown]
# ## Metrics

# %%
flat = {}
for m, frame in runs.groupby("method"):
    for name in models.SONG2IMAGE_METRICS:
        flat[f"{m}/{name}/mean"] = float(frame[name].mean())
        flat[f"{m}/{name}/std"] = float(frame[name].std(ddof=1)) if len(frame) > 1 else 0.0
for _, b in boot.iterrows():
    flat[f"bootstrap/{b['metric']}/diff"] = float(b["diff"])
    flat[f"bootstrap/{b['metric']}/p_not_better"] = float(b["p_not_better"])
flat.update({"agreement/our_beats_schwarz_ours": found["ours"], "agreement/our_beats_schwarz_paper": found["paper"],
             "agreement/cells": found["cells"], "queries": len(songs), "candidates": len(images), "seeds": seeds,
             "grid_s": grid_s, "wall_s": time.perf_counter() - t_start, "synthetic": bool(world_truth)})
metrics_out = report.save_metrics(STAGE, flat)
len(metrics_out)
