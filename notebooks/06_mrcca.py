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
# # 06 · MR-CCA: music–image matching from music videos
# Clustered, ranking and multiple-ranking CCA (C-CCA, CR-CCA, MR-CCA) on an embedded music-video world: consistency with (simulated) labelers against the number of clusters K (Fig. 2A) and the reference share 1/d (Fig. 2B), and local against global references (Table 1), beside the MR-CCA paper's numbers.
#
# The paper's 47,888 music-video pairs and their human labels are not public. Everything below runs on a
# **synthetic** world (`i2s.musicvideos`, stage `00_mv_world`) with the paper's shape: videos cut into
# segments, a 133-d music descriptor per segment, key frames drawn from OpenMoji scenes whose look depends on
# the music (non-linearly, per music style) and on the video, image descriptors computed from the pixels, and
# labelers who prefer the real pair over a random one about 89% of the time.

# %% tags=["parameters"]
mv_world_root = "data/00_mv_world"
repeats = 10                 # the paper repeats each experiment 10 times
k_min = 3                    # Fig. 2A: K from 3 ...
k_max = 20                   # ... to 20
d_for_k_sweep = 6            # Fig. 2A: d fixed at 6
d_min = 2                    # Fig. 2B: d from 2 ...
d_max = 20                   # ... to 20
k_for_d_sweep = 10           # Fig. 2B: K fixed at 10
table1_k = 10                # Table 1: K 10 and d 10, as the paper
table1_d = 10
table1_repeats = 10          # Table 1's repeats, as the paper's
settings = [[5, 5]]          # further (K, d) run and reported: the paper's 84.52% setting
val_fraction = 0.1           # share of the training segments held out to choose K and d (never the test votes)
n_components = 10            # J, canonical dimensions (the paper does not say)
combine = "mean"             # DtRT: one similarity per reference (paper-literal), or concat
sigma = "reference"          # DtRT's sigma_r per reference (the paper's sigma_r^c), or "set": one per reference set
seed = 0
backend = "local"            # parallel section: local processes, or "dask" with a scheduler address
n_jobs = 2
scheduler = ""

# %%
import platform
import time

import pandas as pd
from IPython.display import Markdown, display

from i2s import artefacts, experiments, figures, mrcca, musicvideos, parallel, paths, stage, tables

STAGE = "06_mrcca"
READS = ()  # the music-video world is the parameter mv_world_root
stage.check(STAGE, globals())  # the runner's parameter checks, also when run on its own in JupyterLab
k_values, d_values = list(range(k_min, k_max + 1)), list(range(d_min, d_max + 1))
engine = parallel.engine(backend, n_jobs, scheduler)
t_start = time.perf_counter()
world = musicvideos.load(paths.resolve(mv_world_root))
ours = tables.source_label(True)
meta = world.meta
blocks = {"image_blocks": [slice(a, b) for _, a, b, _ in meta["image_blocks"]],
          "image_metrics": [m for *_, m in meta["image_blocks"]],
          "music_blocks": [slice(a, b) for _, a, b, _ in meta["music_blocks"]],
          "music_metrics": [m for *_, m in meta["music_blocks"]]}
n_train = int((world.segments["split"] == "train").sum())
data = dict(music=world.music, images=world.images, frame_segment=world.frames["segment"].to_numpy(),
            prefs=world.prefs, n_train=n_train, n_components=n_components, combine=combine, sigma=sigma, **blocks)

# %% [markdown]
# ## The data, beside the paper's (Section 2)

# %%
shape = {"videos": world.segments["video"].nunique(), "segments": len(world.segments), "pairs": len(world.frames),
         "train_segments": n_train, "prefer_mv_rate_pct": 100 * world.prefs["prefers_mv"].mean(),
         "music_dim": world.music.shape[1], "image_dim": world.images.shape[1]}
display(tables.save_table(tables.compare_facts(shape, ours), STAGE, "data_shape"))
display(pd.DataFrame(meta["image_blocks"], columns=["image descriptor", "from", "to", "distance"]))

# %% [markdown]
# At `mv_world.scale: 1.0` (the default) the world has the paper's sizes: 1,500 videos, 22,632 segments, 47,888
# music-image pairs, half of them labelled. Our image descriptor has fewer dimensions than the paper's 2,596 (the
# paper names the families, not their sizes).

# %%
frames_v = world.frames.merge(world.segments, on="segment")
examples = {f"video {v}": [str(world.root / "frames" / f) for f in frames_v.loc[frames_v["video"] == v, "file"].head(6)]
            for v in world.segments["video"].drop_duplicates().sample(5, random_state=seed)}
figures.savefig(figures.image_grid(examples, 6, title="Key frames of five music videos (synthetic)"), STAGE, "key_frames");

# %% [markdown]
# ## The paper's first observation: music space has the simpler cluster structure

# %%
ks = list(range(3, 21))
structure = pd.DataFrame({"K": ks, "music": mrcca.cluster_structure(world.music, ks, seed),
                          "image": mrcca.cluster_structure(world.images, ks, seed)})
tables.save_table(structure, STAGE, "cluster_structure")
ax = structure.plot(x="K", y=["music", "image"], marker="o", figsize=(6, 3.2), title="Silhouette of k-means clusters")
figures.savefig(ax.figure, STAGE, "cluster_structure");

# %% [markdown]
# ## The protocol of Section 4, run once
# Each repeat draws 20,000 training segments of 22,632 at random (the paper's split, anew per repeat) and holds out
# `val_fraction` of them, with their votes, to choose K and d; the test votes are those of the other segments. One
# sweep runs every setting the figures and tables need: Fig. 2A's K = 3..20 at d = 6 and Fig. 2B's d = 2..20 at
# K = 10, each over all repeats, Table 1's local and global references at K = 10, d = 10 (each fitted alone, so
# its time is a whole fit), and K = 5, d = 5. A (repeat, K) is clustered once for all its d; the distances to the
# references, the Distance-to-Reference features and the CCA run in float32 BLAS products (`mrcca.run_setting`;
# tests check that they equal the reference code, `mrcca.run_repeat`).

# %%
configs, wanted = mrcca.protocol_configs(repeats, k_values, d_for_k_sweep, d_values, k_for_d_sweep,
                                         (table1_k, table1_d), table1_repeats, tuple(map(tuple, settings)), seed,
                                         val_fraction)
t0 = time.time()
protocol = mrcca.run_protocol(configs, wanted, engine, **data)
runs_k, runs_d, runs_ref, runs_set = (protocol[t] for t in ("fig2a", "fig2b", "table1", "settings"))
runs_k.to_csv(paths.output(STAGE, "fig2a_runs.csv"), index=False)
runs_d.to_csv(paths.output(STAGE, "fig2b_runs.csv"), index=False)
runs_ref.to_csv(paths.output(STAGE, "table1_runs.csv"), index=False)
methods = list(mrcca.METHODS)
display(Markdown(f"{sum(len(c['d']) for c in configs)} fits in {(time.time() - t0) / 60:.1f} min ({engine})."))

# %% [markdown]
# ## Figure 2A: consistency against the number of clusters (1/d = 1/6)

# %%
tables.save_table(experiments.mrcca_curve(runs_k, "K", methods).round(4), STAGE, "fig2a")
figures.savefig(figures.mean_std_lines(runs_k, "K", methods, f"Consistency vs K (1/d = 1/{d_for_k_sweep}), synthetic",
                                       "consistency with labelers (test votes)").figure, STAGE, "fig2a_consistency_vs_k");

# %% [markdown]
# ## Figure 2B: consistency against the reference share 1/d (K = 10)

# %%
runs_d["1/d"] = 1 / runs_d["d"]
tables.save_table(experiments.mrcca_curve(runs_d, "d", methods).round(4), STAGE, "fig2b")
figures.savefig(figures.mean_std_lines(runs_d, "1/d", methods, f"Consistency vs 1/d (K = {k_for_d_sweep}), synthetic",
                                       "consistency with labelers (test votes)").figure, STAGE, "fig2b_consistency_vs_d");

# %% [markdown]
# ## Table 1: local against global references (K = 10, 1/d = 1/10)

# %%
t1 = runs_ref.groupby("references")[["mr-cca", "fit_s"]].mean()
display(tables.save_table(experiments.mrcca_table1(runs_ref, ours).round(3), STAGE, "table1_local_vs_global"))
display(Markdown(f"Ours ran on this machine: {platform.processor() or platform.machine()}, "
                 f"{__import__('os').cpu_count()} cores, each fit on one core (the paper: one 2.80 GHz CPU, 16 GB RAM). "
                 "Seconds are not comparable across machines; at the paper's data size the ratio is."))

# %% [markdown]
# ## Two readings of the DtRT's normalisation σ
# The paper writes s_r(I) = exp(−d_r(I, I_r)² / σ_r^c) with "σ_r^c a normalization parameter" and says no more.
# The index r reads as one σ per reference: ours takes, per feature type, the median non-zero distance of the
# cluster's rows to reference r (`sigma: reference`, the default). The other reading is one σ per reference
# set: the median over all (row, reference) pairs (`sigma: set`, this repo's earlier default). Both are run
# below at Table 1's local setting with the same repeats, so the reader sees what the choice moves. With one σ
# per reference, a reference's DtRT column does not depend on d, so a d sweep shares one CCA factorisation per
# cluster (`mrcca.fit_cca_nested`); that is why the per-reference reading is also the fast one, not why it is
# the default.

# %%
no_sigma = {k: v for k, v in data.items() if k != "sigma"}
# this run's own reading is Table 1's local runs themselves (the same fits); only the other one is fitted here
other = mrcca.sweep([{"K": table1_k, "d": table1_d, "seed": seed + r, "val_fraction": val_fraction, "sigma": s}
                     for s in mrcca.SIGMAS if s != sigma for r in range(table1_repeats)], engine, "sigma readings",
                    **no_sigma)
readings = pd.concat([runs_ref[runs_ref["references"] == "local"], other], ignore_index=True)
display(tables.save_table(mrcca.sigma_readings(readings), STAGE, "sigma_readings"))

# %% [markdown]
# ## The best setting, chosen on validation, and what labelers themselves reach
# K and d are chosen by the mean **validation** consistency of MR-CCA over the repeats (the held-out training
# segments' votes; `mrcca.select_on_validation` never reads a test vote); the chosen setting is then refitted on all
# training segments and scored on the test votes. The setting that the test votes themselves would pick is shown
# too, labelled as what it is: an optimistic bound, not a result. The paper's 81.23% (K = 13, d = 6) does not say
# how its setting was chosen; its 84.52% (K = 5, d = 5) was on "some human-labelled pairs", which we read as the
# test pairs every labeler agrees on.

# %%
sel = mrcca.select_on_validation(pd.concat([runs_k, runs_d.drop(columns="1/d")], ignore_index=True), metric="mr-cca")
chosen = sel.iloc[0]
refit = mrcca.sweep([{"K": int(chosen["K"]), "d": int(chosen["d"]), "seed": seed + r, "val_fraction": 0.0}
                     for r in range(repeats)], engine, "refit of the chosen setting", **data)
human = mrcca.human_reference(world.prefs, mrcca.repeat_split(len(world.music), n_train, seed))
best = experiments.mrcca_best(sel, refit, runs_set, human, ours)
display(tables.save_table(sel.round(4), STAGE, "selection"))
display(tables.save_table(best.round(2), STAGE, "best_consistency"))
figures.beside_paper_figure(STAGE, "best_consistency", "Best consistency and the labelers: ours against the paper");

# %%
display(Markdown("\n".join(f"- {line}" for line in mrcca.findings(runs_k, runs_d, runs_ref,
                                                                  paper=experiments.mrcca_table1_paper()))))

# %% [markdown]
# **Reading the results next to the paper.** The list above is computed from this run. The paper finds (i) consistency rising with K up to about 10 and
# flat after, (ii) a best 1/d around 1/6 to 1/8, (iii) MR-CCA > CR-CCA > C-CCA everywhere, and (iv) local
# references slightly better and far cheaper than global ones. The tables and figures above say which of these
# the synthetic world reproduces; the world was not tuned to make any of them true. Two things limit the
# comparison: the default world is smaller than the paper's (fewer test votes, so wider error bars), and its
# labelers follow a rule we wrote (a hidden match between the music's implied look and the frame's), so the
# absolute consistencies say how learnable that rule is from our descriptors, not how humans judge music videos.

# %%
summary = runs_k.groupby("K")[methods].mean()
k5 = runs_set[(runs_set["K"] == 5) & (runs_set["d"] == 5)]
metrics = artefacts.write_metrics(STAGE, {
    "pairs": len(world.frames), "segments": len(world.music), "repeats": repeats, "table1_repeats": table1_repeats,
    "best_val/K": int(chosen["K"]), "best_val/d": int(chosen["d"]),
    "best_val/val_consistency": float(chosen["val"]), "best_val/test_consistency": float(refit["mr-cca"].mean()),
    "test_argmax/K": int(sel.iloc[1]["K"]), "test_argmax/d": int(sel.iloc[1]["d"]),
    "test_argmax/test_consistency": float(sel.iloc[1]["test"]),
    **({"k5_d5/consistency": float(k5["mr-cca"].mean()), "k5_d5/unanimous": float(k5["mr-cca unanimous"].mean())}
       if len(k5) else {}),
    "table1/local/consistency": float(t1.loc["local", "mr-cca"]), "table1/global/consistency": float(t1.loc["global", "mr-cca"]),
    "table1/local/fit_s": float(t1.loc["local", "fit_s"]), "table1/global/fit_s": float(t1.loc["global", "fit_s"]),
    **{f"sigma_{s}/{col}": float(v) for s, row in readings.groupby("sigma")[["mr-cca", "val mr-cca", "fit_s"]].mean()
       .iterrows() for col, v in row.items()},
    "mrcca_beats_ccca_share_of_k": float((summary["mr-cca"] > summary["c-cca"]).mean()),
    "prefer_mv_rate": float(world.prefs["prefers_mv"].mean()),
    "fits": int(sum(len(c["d"]) for c in configs) + len(refit)), "wall_s": time.perf_counter() - t_start,
})
metrics
