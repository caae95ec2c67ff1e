"""Tagging photos with a trained detector: detections and tag vectors, in processes."""
from __future__ import annotations


import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import detector, imagefiles



@torch.no_grad()
def predict(model: detector.TagDetector, images, batch_size: int = 16, threads: int = 2, desc: str = "tagging",
            n_jobs: int = 1, device: str = "cpu") -> list[dict]:
    """Detections and tag vectors of images (uint8 tensors, or files decoded batch by batch), in input order, on
    the CPU; `n_jobs` > 1 splits the images over that many processes of `threads` torch threads each (CPU only: on a
    GPU one process tags them all)."""
    if n_jobs > 1 and len(images) > batch_size and device == "cpu":
        from joblib import Parallel, delayed
        chunks = [c.tolist() for c in np.array_split(np.arange(len(images)), n_jobs)]
        parts = Parallel(n_jobs=n_jobs)(delayed(_predict_part)(model, [images[i] for i in c], batch_size, threads,
                                                               f"{desc} ({k + 1}/{n_jobs})")
                                        for k, c in enumerate(chunks))
        return [p for part in parts for p in part]
    model.eval().to(device)
    out = []
    for s in tqdm(range(0, len(images), batch_size), desc=desc, mininterval=5):
        batch = images[s:s + batch_size]
        if not isinstance(batch[0], torch.Tensor):
            batch = imagefiles.load_images(batch, threads)
        for r in model([detector._as_float(im.to(device)) for im in batch]):
            out.append({k: v.cpu() for k, v in r.items()})
    model.cpu()
    return out


def _predict_part(model, images, batch_size, threads, desc):
    torch.set_num_threads(threads)
    return predict(model, images, batch_size, threads, desc)


def song_photos(subset: pd.DataFrame, triplets: pd.DataFrame, gt50: pd.Series, all_gt50: bool) -> pd.DataFrame:
    """The song photos to tag: the experiment subset's and, with `all_gt50`, every other photo of the songs with more
    than 50 triplets; columns image, image_path, song_id, in_subset, song_gt50."""
    photos = subset[["image", "image_path", "song_id"]].assign(in_subset=True)
    if all_gt50:
        more = triplets[triplets["song_id"].isin(gt50) & ~triplets["image"].isin(subset["image"])]
        photos = pd.concat([photos, more[["image", "image_path", "song_id"]].assign(in_subset=False)], ignore_index=True)
    return photos.assign(song_gt50=photos["song_id"].isin(gt50))
