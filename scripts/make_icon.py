"""Draw the application icon: resources/sarlang.png (256 px) and resources/sarlang.ico (Windows).

A radar's view: a dark rounded tile, a swept sector with range rings from the lower left
corner, a bright target echo, and a speech bubble for the chat with the model. Drawn at 4x and
scaled down for smooth edges.  python scripts/make_icon.py [OUT_DIR]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

S = 1024            # drawing size; the PNG is S / 4
ORIGIN = (int(S * 0.16), int(S * 0.84))


def _tile() -> Image.Image:
    top, bottom = (18, 44, 72), (8, 20, 36)
    grad = Image.new("RGB", (1, S))
    for y in range(S):
        t = y / (S - 1)
        grad.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    grad = grad.resize((S, S))
    mask = Image.new("L", (S, S), 0)
    ImageDraw.Draw(mask).rounded_rectangle((24, 24, S - 24, S - 24), radius=int(S * 0.2), fill=255)
    tile = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    tile.paste(grad, (0, 0), mask)
    return tile


def _sweep(img: Image.Image) -> None:
    ox, oy = ORIGIN
    glow = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(glow)
    r = int(S * 0.78)
    d.pieslice((ox - r, oy - r, ox + r, oy + r), 285, 345, fill=(64, 214, 196, 90))
    img.alpha_composite(glow.filter(ImageFilter.GaussianBlur(S * 0.01)))
    d = ImageDraw.Draw(img)
    for k in range(1, 5):
        rr = int(S * 0.18 * k)
        d.arc((ox - rr, oy - rr, ox + rr, oy + rr), 270, 360, fill=(120, 200, 220, 170), width=int(S * 0.012))
    angle = math.radians(-45)
    d.line((ox, oy, ox + r * math.cos(angle), oy + r * math.sin(angle)), fill=(160, 255, 230, 255),
           width=int(S * 0.02))


def _echo(img: Image.Image, cx: float, cy: float, radius: float) -> None:
    halo = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(halo).ellipse((cx - radius * 2.4, cy - radius * 2.4, cx + radius * 2.4, cy + radius * 2.4),
                                 fill=(255, 200, 90, 150))
    img.alpha_composite(halo.filter(ImageFilter.GaussianBlur(radius)))
    ImageDraw.Draw(img).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(255, 236, 170, 255))


def _bubble(img: Image.Image) -> None:
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = S * 0.55, S * 0.13, S * 0.88, S * 0.38
    d.rounded_rectangle((x0, y0, x1, y1), radius=int(S * 0.06), fill=(245, 248, 252, 255))
    d.polygon([(x0 + S * 0.06, y1 - 2), (x0 + S * 0.02, y1 + S * 0.08), (x0 + S * 0.14, y1 - 2)],
              fill=(245, 248, 252, 255))
    for i in range(3):
        cx, cy, rr = x0 + S * (0.08 + 0.085 * i), (y0 + y1) / 2, S * 0.025
        d.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), fill=(18, 44, 72, 255))


def draw() -> Image.Image:
    img = _tile()
    _sweep(img)
    _echo(img, S * 0.58, S * 0.52, S * 0.035)
    _echo(img, S * 0.40, S * 0.45, S * 0.022)
    _bubble(img)
    return img.resize((S // 4, S // 4), Image.LANCZOS)


def main(out_dir: str = "resources") -> None:
    out = Path(out_dir)
    icon = draw()
    icon.save(out / "sarlang.png", optimize=True)
    icon.save(out / "sarlang.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    print(f"wrote {out / 'sarlang.png'} and {out / 'sarlang.ico'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
