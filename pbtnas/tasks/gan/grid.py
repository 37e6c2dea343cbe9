"""Sample grids as PNG files (plain PIL, no plotting library needed)."""

from __future__ import annotations

import numpy as np
import torch

from pbtnas.rundir.atomic import atomic_path


def save_grid(images: torch.Tensor, path: str, nrow: int, pad: int = 2) -> None:
    """Tile images in ``[-1, 1]`` (N, C, H, W) into rows of ``nrow`` and write a PNG atomically."""
    from PIL import Image

    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    n, c, h, w = x.shape
    rows = (n + nrow - 1) // nrow
    canvas = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y0 : y0 + h, x0 : x0 + w] = x[i].transpose(1, 2, 0)
    image = Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode="L" if c == 1 else "RGB")
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp)
