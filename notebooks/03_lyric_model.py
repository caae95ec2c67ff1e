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
# # 03 · The lyric model on its own: vocabulary, lengths, training curves, what a lyric maps to
# Preprocesses the lyrics as in Section 5.1, embeds them with frozen word vectors (out-of-vocabulary words counted), trains the BiLSTM lyric encoder *Our* (Section 4.2, MSE to the image tag vector of Eq. 11, RMSprop as in 4.4) and checks which image tags a lyric maps to.
#
# Paper: Li, Hu, Lu, *Image2song*, Sections 4.2-4.4 and 5.1. Unless the tag detector and the data are real, the
# lyrics and photos here are **synthetic** (stage `00_world`); the image tags come from notebook 02's detector.
# The paper embeds words with GoogleNews word2vec (300-d); we use GloVe 6B 50-d by default (the
# `lyric_model.vectors` parameter takes a word2vec binary instead).

# %% tags=["parameters"]
world_truth = "data/00_world/truth"  # data_stats.world_truth (empty for real data: labels then say so)
vectors = "glove-6b-50d"   # or a word2vec binary such as GoogleNews-vectors-negative300.bin
group = "obj-attr"         # the tag group the curves are trained on
split = "dagger"           # dagger: unseen test songs; section: unseen images of seen songs
hidden = 32                # LSTM units per direction (the paper does not say)
mlp_hidden = 128           # hidden layer of the MLP into the tag space
max_tokens = 0             # 0: the whole lyric
loss = "mse"               # Eq. 11
lr = 0.001                 # Section 4.4: RMSprop
rho = 0.9
eps = 1e-08
batch_pairs = 100
max_epochs = 60
patience = 5
val_fraction = 0.1
chrono = 200              # chrono initialisation of the LSTM gates (memories up to 200 steps)
seeds = 3
seed = 0
threads = 1
device = "auto"            # parallel section: a GPU when there is one, else the CPU
probe_values = [0.0, 0.25, 0.5, 0.75, 1.0]  # order_probe: order_signal values of the logistic probes
probe_bilstm_at = [1.0]    # ... and of the BiLSTM probes
probe_epochs = 30
probe_folds = 5
probe_lr = 0.003
probe_seed = 0
curve_sizes = [500, 1000, 2000]  # the BiLSTM probes' learning curve (training songs)
curve_val = 300
curve_patience = 0         # 0: all probe_epochs run (a BiLSTM may sit at the majority class for several epochs first)
backend = "local"          # parallel section: where the curve's points run
n_jobs = 2
scheduler = ""

# %%
import dataclasses
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import matplotlib.pyplot as plt

from i2s import (artefacts, devices, diagnosis, experiments, figures, lyricdata, metrics, networks, oracle, orderprobe,
                 parallel, paths, planted, scoring, stage, tables, tagtable, text, training, tuning)

STAGE = "03_lyric_model"
READS = ("subset", "splits", "tags", "tuning_grid", "tuned_settings", "planted_runs", "planted_oracle")
# notebook 01's, 02's tags, stage 03_tuning's, stage 03_planted's
truth = paths.resolve(world_truth) if world_truth else None
stage.check(STAGE, globals())  # the runner's parameter checks, also when run on its own in JupyterLab
t_start = time.perf_counter()
torch.set_num_threads(threads)
subset, splits, tag_table, kv = lyricdata.load_experiment(vectors)
cfg = networks.Config.from_params(**globals())  # the model and training settings of the parameters cell
best = tuning.read_best()                        # each method's setting chosen on validation (stage 03_tuning)
ours = tables.source_label(bool(world_truth))
display(Markdown(f"{subset['song_id'].nunique()} songs, {len(subset)} triplets; word vectors: `{vectors}` "
                 f"({len(kv):,} words, {kv.vector_size}-d), frozen."))

# %% [markdown]
# ## Vocabulary and out-of-vocabulary words
# Lowercase, non-alphanumeric characters separate words, contractions split, scikit-learn's English stop words dropped.
# A word without a vector is kept in its place as `<unk>` (a zero vector) and counted here, not dropped.

# %%
lyrics = subset.drop_duplicates("song_id").set_index("song_id").sort_index()
token_lists = [text.tokenize(x) for x in lyrics["lyric"]]
tag_words = tagtable.tag_matrix(tag_table, "obj-attr")[1]
oov = text.oov_stats(token_lists, kv)
display(tables.save_table(text.vocabulary_table(oov, tag_words, kv), STAGE, "vocabulary"))
oov_words = tables.save_table(text.oov_table(token_lists, kv), STAGE, "oov_words")
display(oov_words.head(20) if len(oov_words) else Markdown("Every lyric word and every tag word has a vector."))

# %% [markdown]
# ## Lyric length

# %%
lengths = text.length_table(lyrics["lyric"])
tables.save_table(lengths.describe().round(1).reset_index(names="statistic"), STAGE, "lyric_lengths")
figures.savefig(figures.length_histogram(lengths, max_tokens, "Lyric length per song (words)"), STAGE, "lyric_lengths")
display(lengths.describe().round(1))

# %%
words = text.word_counts(token_lists)
display(Markdown("Most frequent words after preprocessing: " + ", ".join(f"*{w}* ({n})" for w, n in words.head(25).items())))

# %% [markdown]
# ## Every method trained to its best, on validation only (stage `03_tuning`)
# Each method gets the same budget: 2 learning rates × 2 widths (LSTM units per direction for the BiLSTM methods; the
# MLP's hidden layer, or BoW's rank, for the others), trained on the † training songs with one seed, early-stopped on
# the validation songs carved from train, and scored on nothing else: the test songs are never read while choosing.
# A cell is the validation mean rank as a percentage of the validation pool (50 = chance), and in brackets the fit:
# the mean rank of 300 training images among all training songs. The chosen setting (lowest validation rank) is what
# notebooks 03-07 train.

# %%
grid = artefacts.read("tuning_grid")
display(tables.save_table(tuning.summary(grid), STAGE, "tuning_grid"))
fit = grid.merge(pd.DataFrame([{"method": m, "lr": b["lr"], "width_value": b[tuning.width_key(m)]}
                               for m, b in best.items()]), on=["method", "lr", "width_value"])
display(fit[["method", "lr", "width", "width_value", "val_mean_rank_pct", "train_mean_rank_pct", "epochs"]].round(1))

# %% [markdown]
# ## Training Our: BiLSTM → MLP into the tag space (MSE, RMSprop)
# Mini-batches hold 100 image-lyric pairs made of whole songs (a song's training images share a batch, so each
# lyric is encoded once per batch). After each epoch the validation images (carved from train, mirroring the
# split) are ranked; training stops when their mean rank has not improved for `patience` epochs and the model
# ends at its best epoch. The test set is used once, at the end.
#
# Our trains with its tuned setting (above) and the LSTMs' gates start with the chrono initialisation (the paper
# does not say how it initialises them; the diagnosis below shows why the default fails). The curves show this
# run's seeds: the loss, the early-stopping criterion, and the fit on the training pairs is in the table after them.

# %%
data = lyricdata.build_data(subset, tag_table, group, kv, max_tokens=max_tokens)
cfg_our = tuning.tuned(cfg, best, "Our")
runs = [training.run("Our", data, splits, split, seed + k, cfg_our, keep_model=True, fit=tuning.FIT_IMAGES,
                     device=devices.resolve(device))
        for k in range(seeds)]
tables.save_table(training.curves(runs).round(5), STAGE, "training_curves")
fig = figures.lyric_training_curves({f"seed {r['seed']}": r["history"] for r in runs},
                                    f"Our on {split}, {group} tags ({ours})")
figures.savefig(fig, STAGE, "training_curves");

# %%
names = metrics.SPLIT_METRICS[split]
test = training.run_summaries(runs, names)
display(tables.save_table(test.round(3), STAGE, "our_test_metrics").round(2))
versus = tables.save_table(experiments.our_vs_paper(test, split, group, ours).round(3), STAGE, "our_vs_paper")
figures.beside_paper_figure(STAGE, "our_vs_paper", f"Our on {split}, {group} tags: ours against Table 2");
display(Markdown(f"Our on {split}, {group} tags, mean over {seeds} seed(s), beside the paper's Table 2:"))
display(versus.round(2))
pool = len(lyricdata.split_indices(data, splits, split, seed, val_fraction)["pool"])
chance = metrics.chance(pool, ["R@10", "Med r"])
display(Markdown(f"Chance with a pool of {pool} songs: R@10 = {chance['R@10']:.1f}%, Med r ≈ {chance['Med r']:.0f}. "
                 "Table 2 and the baselines are in notebook 04."))

# %% [markdown]
# **Ceilings from the world's truth** (`i2s.oracle`; synthetic world only). The same test queries and pool, ranked by
# the generator's own likelihood of each photo's detected tags under each candidate song: knowing the song's true
# signature (theme and motifs: the best any method could do from these tags), knowing only its theme, and knowing what
# its lyric reveals (the generator's posterior given the words and phrase orders the lyric drew).

# %%
if truth is not None and oracle.is_world_of(subset, truth):
    idx0 = lyricdata.split_indices(data, splits, split, seed, val_fraction)
    ceil = oracle.ceilings(tag_table, subset, truth, [data.images[i] for i in idx0["test"]],
                           [data.songs[j] for j in idx0["pool"]])
    ceiling = oracle.ceiling_table(ceil, names)
    display(tables.save_table(pd.concat([ceiling, test[list(names)].mean().to_frame().T.assign(
        method=f"Our (mean of {seeds} seeds)")], ignore_index=True).round(2), STAGE, "our_vs_oracle"))
else:
    ceil, ceiling = {}, pd.DataFrame()
    display(Markdown("No world truth (real data): no oracle."))

# %% [markdown]
# ## The training diagnosis: what the BiLSTM's final state sees
# Section 4.2 reads a lyric's representation off the BiLSTM's final outputs (forward last ‖ backward first). With
# PyTorch's initialisation (and with a forget-gate bias of 3, this repo's earlier fix), the forward final output
# barely depends on any word more than ~20 steps before the end of a lyric about a hundred words long: the gradient
# of the final output with respect to each input word decays by orders of magnitude within a few dozen steps, so the
# encoder sees the last and the first few words and cannot even fit its training pairs (a mean of the word vectors,
# CONSE, fits them far better). The chrono initialisation (Tallec & Ollivier, 2018; `lyric_model.chrono`) opens the
# forget gates for memories of 1 to `chrono` steps and closes the input gates in proportion, which keeps the cell
# state unsaturated over a whole lyric. The table compares both initialisations on the same data, setting and seed:
# the sensitivity of the final output to the word d steps before the end, the fit on training pairs, and the
# validation criterion.

# %%
diag_runs = {"forget-gate bias 3 (before)": training.run("Our", data, splits, split, seed, dataclasses.replace(
                 cfg_our, chrono=0, forget_bias=3.0), keep_model=True, test=False, fit=tuning.FIT_IMAGES,
                 device=devices.resolve(device)),
             f"chrono {cfg_our.chrono} (now)": runs[0]}
diag = pd.DataFrame({name: {**{f"∂h/∂x, {d} steps before the end": v for d, v in diagnosis.final_state_sensitivity(
                                 r["model"], data, np.unique(data.image_song.numpy()[idx_train])[:32]).items()},
                            "fit: training mean rank %": 100 * r["fit"]["ranks"].mean() / r["fit"]["pool"],
                            "validation mean rank % (kept epoch)": float(r["history"]["val_mean_rank_pct"].min()),
                            "mean gradient norm (first epoch)": float(r["history"]["grad_norm"].iloc[0]),
                            "epochs": r["epochs"]}
                     for name, r in diag_runs.items()
                     for idx_train in [lyricdata.split_indices(data, splits, split, r["seed"], val_fraction)["train"]]})
display(tables.save_table(diag.reset_index(names="measure"), STAGE, "training_diagnosis"))

# %% [markdown]
# ## Which tags does a lyric map to?
# For test songs: the five tags with the highest predicted probability, and the five furthest above the average
# prediction (what sets this lyric apart), each beside the same lists for the song's own images (their average
# tag vector, and its difference from the average training image). Two traps are measured: a model that maps
# every lyric to the same frequent tags (compare with always guessing the five most frequent tags), and chance
# agreement of the distinctive tags (compare with the next song's images).

# %%
idx = lyricdata.split_indices(data, splits, split, runs[0]["seed"], val_fraction)
nn_table, frequent = scoring.lyric_to_tags(runs[0]["model"], data, idx, lyrics["title"].to_numpy(), 5)
display(tables.save_table(nn_table, STAGE, "lyric_to_tags").head(12))
means = nn_table.select_dtypes("number").mean()
display(Markdown(
    f"Mean overlap of 5 tags: top tags **{means['overlap']:.2f}** (always the five most frequent, "
    f"*{' '.join(frequent)}*: {means['frequent-tags guess overlap']:.2f}); distinctive tags "
    f"**{means['distinctive overlap']:.2f}** (against the next song's images: {means['next-song overlap']:.2f}). "
    f"The model gives {nn_table['lyric → top tags'].nunique()} distinct top-tag lists and "
    f"{nn_table['lyric → distinctive tags'].nunique()} distinct distinctive lists for {len(nn_table)} songs."))

# %% [markdown]
# The content gap in the word vectors themselves: the lyric words nearest (cosine) to a few object tags.
# The world writes lyrics with words *related to* what the photos show, rather than their names.

# %%
probe = [w for w in ("tree", "beach", "dog", "cake", "car", "guitar", "snowman", "heart") if w in tag_words][:6]
display(tables.save_table(text.nearest_words(kv, probe, list(words.index), 8), STAGE, "nearest_lyric_words"))

# %% [markdown]
# ## The planted-effect sweep: does each method find what the world plants? (stage `03_planted`)
# The world writes a share `order_signal` of every lyric's signal into the **order** of phrases of three code words
# that every song uses equally often, and the rest into **which** words it uses (README, *The embedded world*). Stage
# `03_planted` writes the lyrics again at several values of `order_signal`, keeping every photo, tag, subset and split,
# and retrains BoW, CONSE, Our, Our-attention and Our-attention-linear on the † split (obj-attr tags) with 3 seeds
# each, each method with its tuned setting. At 0 a lyric is a bag of independent words; at 1 its word counts are the
# same for every song (a test of the generator checks it), so BoW and CONSE can only be at chance there, and an
# order-aware model finds something only if it reads the order. The oracles are those above, at each value (the
# song and theme oracles read no lyric, so they stay the same).

# %%
planted_runs, planted_oracle = artefacts.read("planted_runs"), artefacts.read("planted_oracle")
if len(planted_runs):
    sweep = planted.summary(planted_runs, planted_oracle)
    display(tables.save_table(sweep.round(2), STAGE, "planted_sweep"))
    every = (planted_runs.groupby(["order_signal", "method"])[list(planted.NAMES)].agg(["mean", "std"]).round(2))
    display(tables.save_table(tables.flat_columns(every), STAGE, "planted_sweep_all_metrics"))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for m, g in planted_runs.groupby("method", sort=False):
        a = g.groupby("order_signal")["R@10"].agg(["mean", "std"])
        ax.errorbar(a.index, a["mean"], yerr=a["std"], marker="o", capsize=3, label=m)
    for k, style in (("song", "k--"), ("lyric", "k-."), ("theme", "k:")):
        o = planted_oracle[planted_oracle["oracle"] == k].sort_values("order_signal")
        ax.plot(o["order_signal"], o["R@10"], style, label=f"oracle ({k})")
    n_pool = metrics.chance(pool, ["R@10"])["R@10"]
    ax.axhline(n_pool, color="gray", lw=0.8)
    ax.set(xlabel="order_signal (share of the signal in word order)", ylabel="R@10 (%), dagger, obj-attr tags",
           title="Planted order signal: R@10 (mean ± std over seeds)")
    ax.legend(fontsize=8, ncol=2)
    figures.savefig(fig, STAGE, "planted_sweep")
    planted_metrics = planted.metrics_of(planted_runs, planted_oracle)
else:
    planted_metrics = {}
    display(Markdown("The sweep needs the world's generator (synthetic data only): nothing to show."))

# %% [markdown]
# ### Is the order code learnable at all? Positive controls (`i2s.orderprobe`)
# When a method stays at chance where only order carries the signal, either the lyrics carry no learnable order
# signal (the world would be wrong) or the model does not learn it from this many songs. The probes below predict a
# song's **theme** from its lyric (what † retrieval can carry to unseen songs), with song-level folds: logistic
# regression on the bag of words (order-blind), on every ordered word trigram (order-aware, knows nothing of the
# code), on the ordered trigrams of the code words (knows the code's words: the ceiling of a local n-gram reader),
# and Our's own BiLSTM (frozen word vectors, chrono init) trained on the theme itself, a stronger supervision than
# retrieval's tag vectors, read out by its final states (as Our) or mean-pooled, on the whole lyric and on its
# code words alone; its epoch is chosen on validation songs.

# %%
if len(planted_runs):
    probe = orderprobe.probe_table(subset, truth, probe_values, kv, hidden, chrono, probe_lr, probe_epochs,
                                   probe_folds, probe_seed, probe_bilstm_at)
    display(tables.save_table(probe.round(3), STAGE, "order_probe"))
    probe_metrics = orderprobe.probe_metrics(probe)
    at1 = probe[probe["order_signal"] == max(probe_values)].set_index("probe")["accuracy"]
    display(Markdown(f"At order_signal {max(probe_values):g} (chance {probe['chance'].iloc[0]:.3f}, the majority theme): "
                     + "; ".join(f"{k} {v:.3f}" for k, v in at1.items()) + "."))
else:
    probe_metrics = {}

# %% [markdown]
# ### Is it the number of songs? The BiLSTM probes' learning curve
# The subset has a few hundred songs. The world has thousands more English songs whose lyrics the generator can
# write at order_signal 1, so the same BiLSTM probes (and, beside them, the logistic probes on the bag of words and
# on word trigrams) are trained on the first n of a random draw of them, their epoch chosen on further songs, and
# tested on the subset's own songs. If accuracy climbs with n, the model class can read the code and the sweep's
# chance-level result at Shuttersong's size is a matter of data, not of the world or of the code. The BiLSTM runs
# with Our's chrono initialisation (`chrono`: gates that keep memories for up to that many steps) and, beside it,
# with PyTorch's default initialisation, since a long-memory start may suit a local code less.

# %%
if len(planted_runs):
    curve = orderprobe.learning_curve(subset, truth, curve_sizes, kv, hidden, chrono, probe_lr, probe_epochs,
                                      probe_seed, curve_val, curve_patience, max(probe_values),
                                      parallel.engine(backend, n_jobs, scheduler))
    display(tables.save_table(curve.round(3), STAGE, "order_probe_curve"))
    wide = curve.pivot(index="train_songs", columns="probe", values="accuracy").reset_index()
    ax = figures.mean_std_lines(wide, "train_songs", [c for c in wide.columns if c != "train_songs"],
                                f"Theme from lyric at order_signal {max(probe_values):g}: accuracy on the "
                                f"{curve['test_songs'].iloc[0]} subset songs", "accuracy")
    ax.axhline(curve["chance"].iloc[0], color="gray", lw=0.8, ls="--", label="majority theme")
    ax.set_xscale("log")
    ax.legend(fontsize=7)
    figures.savefig(ax.figure, STAGE, "order_probe_curve")
    plt.show()
    at_most = curve[curve["train_songs"] == curve["train_songs"].max()].set_index("probe")["accuracy"]
    display(Markdown(f"With {curve['train_songs'].max():,} training songs (chance {curve['chance'].iloc[0]:.3f}): "
                     + "; ".join(f"{k} {v:.3f}" for k, v in at_most.items()) + "."))
    probe_metrics.update(orderprobe.curve_metrics(curve))


# %%
agg = test[list(names)].agg(["mean", "std"])
metrics_out = artefacts.write_metrics(STAGE, {
    "songs": len(token_lists), "vocab": oov, "vocab/tag_words_oov": sum(w not in kv.key_to_index for w in tag_words),
    "length/mean": float(lengths["after preprocessing"].mean()), "length/max": int(lengths["after preprocessing"].max()),
    **{f"our/{split}/{group}/{m}/{s}": float(agg.loc[s, m]) for m in names for s in ("mean", "std")},
    "our/epochs_mean": float(test["epochs"].mean()), "our/lyrics_per_s": float(test["lyrics/s"].mean()),
    "tags/overlap_at5": float(means["overlap"]), "tags/overlap_at5_frequent_guess": float(means["frequent-tags guess overlap"]),
    "tags/distinctive_overlap_at5": float(means["distinctive overlap"]),
    "tags/distinctive_overlap_at5_next_song": float(means["next-song overlap"]),
    **{f"fit/{r.method}/{k}": float(getattr(r, k)) for r in fit.itertuples()
       if r.method in ("BoW", "CONSE", "Our", "Our-attention") for k in ("train_mean_rank_pct", "val_mean_rank_pct")},
    **{f"oracle/{split}/{k}/{m}": float(v) for k, r in ceil.items() for m, v in metrics.summary(r, names).items()},
    **planted_metrics,
    **probe_metrics,
    "wall_s": time.perf_counter() - t_start,
})
metrics_out
