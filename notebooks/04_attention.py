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
# # 04 · Image2song retrieval: tag attention, baselines, Table 2 and Figures 6-8
# Retrieves songs for image queries through the image tags: five methods (BoW, CONSE, Attentive-Reader, Our, Our-attention) × three tag groups (objects, attributes, both) × the two splits, each with several seeds, beside the paper's Table 2; example retrievals (Fig. 6), per-song results (Figs. 7-8) and what the attention looks at.
#
# Paper: Li, Hu, Lu, *Image2song*, Sections 4.3, 5.1 and 5.2. The photos, lyrics and tags are those of the
# **synthetic** world (stage `00_world`) and notebook 02's detector: every number below is a synthetic result,
# shown next to the paper's, never in its place.

# %% tags=["parameters"]
world_truth = "data/00_world/truth"  # data_stats.world_truth (empty for real data: labels then say so)
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
attention = 32             # attention section: width of m_t (Eq. 8)
top_k = 5                  # footnote 5: the top 5 tags
pooling = "mean"           # Section 5.1: average pooling of the tag matrix
seeds = 3                  # every configuration runs with seeds seed, seed+1, ...
seed = 0
n_jobs = 2                 # runs in parallel processes ...
threads = 1                # ... of this many torch threads each
bootstrap = 10000          # paired bootstrap resamples (Our-attention vs Our)
examples = 4               # Figure 6 queries

# %%
import time
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from i2s import metrics, models, paths, report

STAGE = "04_attention"
t_start = time.perf_counter()
torch.set_num_threads(threads)
for d in (paths.data(STAGE), paths.figures(STAGE)):
    d.mkdir(parents=True, exist_ok=True)
subset, splits, tag_table, kv = models.load_experiment(vectors)
gt50 = pd.read_csv(paths.tables("01_data_stats") / "songs_gt50.csv")
cfg = models.Config.from_params(hidden=hidden, mlp_hidden=mlp_hidden, max_tokens=max_tokens, loss=loss, lr=lr, rho=rho,
                                eps=eps, batch_pairs=batch_pairs, max_epochs=max_epochs, patience=patience,
                                val_fraction=val_fraction, attention=attention, top_k=top_k, pooling=pooling)
ours = report.source_label(bool(world_truth))
datas = {g: models.build_data(subset, tag_table, g, kv, top_k, max_tokens) for g in models.GROUPS}
display(pd.Series(asdict(cfg), name="setting").to_frame())

# %% [markdown]
# ## What is tagged, and the queries of Figures 7-8
# Figures 7-8 use the songs with more than 50 triplets. Their query images are every tagged image of those songs
# that no model trains on (the section split's test image, plus any image outside the 5-per-song subset that
# notebook 02 tagged), ranked among those songs only: the supplement's numbers for these songs (R@10 ≈ 52-62%)
# fit a pool of about 28 songs, not 586.

# %%
data0 = datas["obj-attr"]
song_of = data0.image_song.numpy()
sidx = data0.song_index()
gt50_songs = np.array(sorted(sidx[s] for s in gt50["song_id"] if s in sidx))
trained_on = set(splits.loc[splits["section"] == "train", "image"])
gt50_queries = np.array([i for i, im in enumerate(data0.images) if song_of[i] in set(gt50_songs) and im not in trained_on])
coverage = pd.DataFrame([
    {"what": "tagged images (tags.parquet)", "count": len(tag_table)},
    {"what": "subset images (5 per song)", "count": len(subset)},
    {"what": "tagged images of the experiment's songs", "count": len(data0.images)},
    {"what": "songs with > 50 triplets", "count": len(gt50_songs)},
    {"what": "their query images for Figs. 7-8", "count": len(gt50_queries)},
    {"what": "their triplets in the refined data", "count": int(gt50["triplets"].sum())}])
report.save_table(coverage, STAGE, "coverage")
display(coverage)
only_subset = len(gt50_queries) <= len(gt50_songs)
display(Markdown("**Only the subset is tagged**: each of these songs has a single query image (its section test image), "
                 "so its R@3 per seed is 0 or 100 and the figures average over seeds only." if only_subset else
                 f"Notebook 02 tagged images beyond the subset: {len(gt50_queries)} query images for {len(gt50_songs)} songs."))
extra = {"section": {"gt50": (gt50_queries, gt50_songs)}} if len(gt50_queries) else {}  # Figs. 7-8: section models


# %% [markdown]
# ## Training and scoring every configuration
# One training loop for all methods (RMSprop, lr 0.001, ρ 0.9, ε 1e-8, batches of 100 image-lyric pairs; early
# stopping on a validation part of train, never on test). Test scores cover every (image, song) pair of the
# split's pool: for the attentive models the lyric's representation depends on the image, so all pairs are
# scored in batched calls.

# %%
jobs = [{"method": m, "group": g, "split": s, "seed": seed + k, "keep_model": s == "dagger" and k == 0}
        for s in models.SPLITS for g in models.GROUPS for m in models.METHODS for k in range(seeds)]
t0 = time.perf_counter()
results = models.run_grid(jobs, datas, splits, cfg, n_jobs, threads, extra, "Table 2 runs")
grid_s = time.perf_counter() - t0
runs = models.results_frame(results)
runs.to_csv(paths.data(STAGE) / "runs.csv", index=False)
display(Markdown(f"{len(results)} runs in {grid_s / 60:.1f} min ({n_jobs} processes × {threads} thread)."))

# %% [markdown]
# The first seed's model of every method × tag group on the dagger split is kept in `data/04_attention/models/`
# (`models.load_model`), for `notebooks/explore.ipynb`.

# %%
for r in results:
    if "model" in r:
        d = datas[r["group"]]
        train_images = models.split_indices(d, splits, r["split"], r["seed"], val_fraction)["train"]
        models.save_model(r["model"], paths.lyric_model_file(r["method"], r["group"]), d, r["method"],
                          np.unique(d.image_song.numpy()[train_images]))

# %% [markdown]
# ## Table 2: dagger († unseen test songs) and section (§ all songs, unseen images)
# Mean ± std over the seeds; the paper's value in brackets.

# %%
pools = {r["split"]: r["test_pairs"] // len(r["test"]["ranks"]) for r in results}  # songs per query
display(Markdown("Random ranking: " + "; ".join(f"{s}: pool of {n} songs, R@10 = {100 * min(10, n) / n:.1f}%, Med r ≈ {(n + 1) / 2:g}"
                                                for s, n in pools.items())))
paper = report.paper_results()
long = pd.concat([models.table2(runs, paper, s, ours).assign(split=s) for s in models.SPLITS], ignore_index=True)
report.save_table(long.round(3), STAGE, "table2_long")
for s in models.SPLITS:
    wide = models.table2_wide(long[long["split"] == s], ours)
    report.save_table(wide.set_axis([f"{g} {m}" for g, m in wide.columns], axis=1).reset_index(), STAGE, f"table2_{s}")
    display(Markdown(f"**Dataset {'†' if s == 'dagger' else '§'} ({s})**, {ours}: mean ± std (paper)"))
    display(wide)

# %%
diff = long.pivot_table(index=["split", "method"], columns=["tags", "metric"], values="difference", sort=False)
display(Markdown("Differences, ours − paper:"))
display(diff.round(2))

# %% [markdown]
# ## Our-attention against Our: paired bootstrap over test queries
# The same queries for both methods; ranks averaged over seeds inside each resample. `p_not_better` is the share
# of resamples in which Our-attention is not better (for Med r: not lower).

# %%
boot = models.bootstrap_table(results, "Our-attention", "Our", bootstrap, seed)
report.save_table(boot.round(4), STAGE, "bootstrap_attention_vs_our")
display(boot.round(3))

# %% [markdown]
# ## Figure 6: image queries, their tags and their top-3 songs (▲ = the true song)
# Our-attention, obj-attr tags, dagger split, first seed.

# %%
att_run = next(r for r in results if "model" in r and (r["method"], r["group"]) == ("Our-attention", "obj-attr"))
queries = models.example_queries(att_run, datas["obj-attr"], subset, tag_table, examples)
fig = models.retrieval_examples(queries, title="Image2song examples, Our-attention (synthetic world)")
report.savefig(fig, STAGE, "fig6_examples");

# %% [markdown]
# ## Figures 7 and 8: per-song R@3 for the songs with more than 50 triplets (section split's models)

# %%
titles = subset.drop_duplicates("song_id").set_index("song_id")["title"]
if len(gt50_queries):
    per_song = pd.DataFrame({
        "Our (obj-attr)": models.per_song_recall(results, data0, "Our", "obj-attr", "section", "gt50"),
        "Our-attention (obj-attr)": models.per_song_recall(results, data0, "Our-attention", "obj-attr", "section", "gt50"),
        **{f"Our ({g})": models.per_song_recall(results, datas[g], "Our", g, "section", "gt50") for g in ("obj", "attr")}})
    per_song = per_song.reindex(gt50["song_id"][gt50["song_id"].isin(per_song.index)])
    per_song.index = [f"{titles[s]}" for s in per_song.index]
    report.save_table(per_song.round(2).reset_index(names="song"), STAGE, "fig7_fig8_per_song_r3")
    fig = models.per_song_bars(per_song, ["Our (obj-attr)", "Our-attention (obj-attr)"],
                               f"Per-song R@3 among the {len(gt50_songs)} songs with > 50 triplets (cf. Fig. 7), synthetic")
    report.savefig(fig, STAGE, "fig7_per_song_attention")
    fig = models.per_song_bars(per_song, ["Our (obj)", "Our (attr)", "Our (obj-attr)"],
                               "Per-song R@3 of Our for the three tag groups (cf. Fig. 8), synthetic")
    report.savefig(fig, STAGE, "fig8_per_song_tag_groups")
    display(per_song.mean().round(2).rename("mean R@3 over songs").to_frame())
    display(Markdown(f"Chance: R@3 = {100 * min(3, len(gt50_songs)) / len(gt50_songs):.1f}% in a pool of {len(gt50_songs)} songs."))
    zero = per_song["Our (obj-attr)"] == 0
    display(Markdown(f"Songs where Our scores 0: {int(zero.sum())} of {len(per_song)}"
                     + (f"; Our-attention's mean R@3 on them: {per_song.loc[zero, 'Our-attention (obj-attr)'].mean():.1f}"
                        " (the paper: attention helps most there)." if zero.any() else ".")))
else:
    per_song = pd.DataFrame()
    display(Markdown("No song of this dataset has more than 50 triplets: Figures 7-8 have nothing to show."))

# %% [markdown]
# ## What the attention looks at
# Our-attention (obj-attr tags, dagger, first seed): among the test images, the one whose attention over its true
# song's lyric departs most from uniform, each word shaded by its weight s_t (Eq. 9) relative to 1/n.

# %%
model = att_run["model"]
test_images = att_run["test"]["images"]
weights = models.attention_weights(model, data0, test_images, song_of[test_images])
peak = np.array([w.max() * len(w) for w in weights])
q = int(np.argmax(peak))
image, song = int(test_images[q]), int(song_of[test_images[q]])
ax = models.attention_text(data0.token_lists[song][: len(weights[q])], weights[q],
                           title=f"{titles[data0.songs[song]]!r} given image {data0.images[image]} "
                                 f"(tags: {tag_table.set_index('image').loc[data0.images[image], 'top_obj-attr']})")
report.savefig(ax.figure, STAGE, "attention_view")
top_words = pd.Series(weights[q], index=data0.token_lists[song][: len(weights[q])]).groupby(level=0).sum()
display(Markdown("Most attended words (summed over repeats): "
                 + ", ".join(f"*{k}* ({v:.3f})" for k, v in top_words.sort_values(ascending=False).head(10).items())
                 + f". Over all {len(peak)} test images the largest weight is {np.median(peak):.2f}× uniform (median; "
                 f"max {peak.max():.2f}×): the attention is {'nearly uniform' if np.median(peak) < 1.5 else 'selective'}."))

# %% [markdown]
# ## Where the synthetic world agrees with the paper's findings

# %%
found = models.claims(long, ours)
report.save_table(found, STAGE, "findings")
display(found.drop(columns="key"))
display(Markdown("\n".join(f"- *{c['finding']}*: holds in **{c['holds (ours)']}** of {c['cells']} cells here, "
                            f"{c['holds (paper)']} in the paper's table." for _, c in found.iterrows())))

# %%
sig = boot.assign(better=boot["p_not_better"] < 0.025, worse=boot["p_not_better"] > 0.975)
att_summary = sig.groupby("split")[["better", "worse"]].sum().assign(cells=sig.groupby("split").size())
display(att_summary)
display(Markdown(
    f"Our-attention against Our, paired bootstrap (two-sided 95%): better in **{int(sig['better'].sum())}** of "
    f"{len(sig)} split × tag group × metric cells, worse in **{int(sig['worse'].sum())}**, within query noise in the "
    f"rest. The paper reports Our-attention ahead of Our in "
    f"{int(found.set_index('key').loc['attention_helps', 'holds (paper)'])} of "
    f"{int(found.set_index('key').loc['attention_helps', 'cells'])} cells of its Table 2 (no intervals)."))

# %% [markdown]
# Each row of the findings table counts the comparable cells of Table 2 (both splits, all metrics) in which a
# finding of Section 5.2 holds, in our runs and in the paper's own table; the bootstrap says which of the
# attention's differences are larger than query noise. Nothing was tuned toward the paper. What the world can and
# cannot show, by construction (these are properties of the generator, `i2s.synth`, not results):
#
# - **The LSTM against pooling and bags of words.** In this world a lyric's word *order* carries no information
#   about its photos: each word is drawn independently from the song's own word distribution (theme words with
#   Zipf weights, pop words, function words, and a small share of the photos' object names), laid out in lines
#   with a repeated chorus. BoW and CONSE see that distribution directly; the BiLSTM has to learn to carry it to
#   its final states from a few hundred training lyrics. So the world gives the sequence model no advantage to
#   find, and where our counts fall short of the paper's on these rows, that is a limit of the world, not
#   evidence against the paper. Notebook 03 shows what Our's lyric representation maps to.
# - **Attention.** Our-attention can only improve on Our through the lyric it re-weights: when the encoder's
#   outputs barely differ between songs, re-weighting its steps changes little (the attention view above shows
#   how far from uniform the weights are in this run).
# - **Objects against attributes.** The world's attributes (colours read off the pixels, sizes, weather,
#   expressions) are shared by photos of every theme, and the lyrics contain no colour or size words by design;
#   objects carry the themes. So object tags should beat attribute tags here to the extent the detector finds
#   the objects (notebook 02's object and attribute APs).
# - **Absolute numbers** are not comparable with the paper's: the lyric-image relation is a rule we wrote, the
#   tags come from a detector trained on the world's own scene graphs, and our word vectors (GloVe 50-d) are
#   smaller than the paper's GoogleNews 300-d.

# %% [markdown]
# ## Cost

# %%
cost = runs.groupby(["method", "split"])[["epochs", "best_epoch", "train_s", "score_s"]].mean().round(2)
pairs = {r["split"]: r["test_pairs"] for r in results}
cost["test pairs"] = [pairs[s] for _, s in cost.index]
cost["pairs/s scored"] = (cost["test pairs"] / cost["score_s"]).round(0)
report.save_table(cost.reset_index(), STAGE, "cost")
display(cost)

# %% [markdown]
# ## Metrics

# %%
agg = runs.groupby(["split", "group", "method"])
flat = {}
for (s, g, m), frame in agg:
    for name in metrics.SPLIT_METRICS[s]:
        flat[f"{s}/{g}/{m}/{name}/mean"] = float(frame[name].mean())
        flat[f"{s}/{g}/{m}/{name}/std"] = float(frame[name].std(ddof=1)) if len(frame) > 1 else 0.0
for _, b in boot.iterrows():
    for k in ("diff", "ci_low", "ci_high", "p_not_better"):
        flat[f"bootstrap/{b['split']}/{b['tags']}/{b['metric']}/{k}"] = float(b[k])
flat.update({"bootstrap/attention_better_cells": int(sig["better"].sum()),
             "bootstrap/attention_worse_cells": int(sig["worse"].sum()), "bootstrap/cells": len(sig)})
for _, c in found.iterrows():
    flat[f"findings/{c['key']}/holds_ours"] = int(c["holds (ours)"])
    flat[f"findings/{c['key']}/holds_paper"] = int(c["holds (paper)"])
    flat[f"findings/{c['key']}/cells"] = int(c["cells"])
flat.update({"runs": len(results), "seeds": seeds, "grid_s": grid_s, "gt50_queries": len(gt50_queries),
             "wall_s": time.perf_counter() - t_start})
metrics_out = report.save_metrics(STAGE, flat)
len(metrics_out)
