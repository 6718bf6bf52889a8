"""Grad-CAM explanation heatmaps on the last convolutional block of the VGG16.

Grad-CAM (Selvaraju et al., 2017) weights each channel of a convolutional activation by the mean
gradient of the class score with respect to it; the positive part of the weighted sum shows where
the network looked. We take the activation after the last convolution (conv5_3 and its ReLU, 14x14
for a 224 input), the finest map that still carries the class evidence.

Everything here is hook-free and never writes `.grad` on the network's parameters, so one network
can explain images in several threads at once. Pure PyTorch/NumPy (plus OpenCV's colour map): no
Django.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

Box = tuple[int, int, int, int]


def last_conv_index(features: nn.Sequential) -> int:
    """Index in `features` of the last Conv2d; Grad-CAM reads the activation after its ReLU."""
    for index in range(len(features) - 1, -1, -1):
        if isinstance(features[index], nn.Conv2d):
            return index
    raise ValueError("the features block has no Conv2d layer to explain")


def grad_cam(
    features: nn.Sequential,
    head: Callable[[torch.Tensor], torch.Tensor],
    batch: torch.Tensor,
    *,
    target: int | None = None,
) -> tuple[np.ndarray, int]:
    """Grad-CAM of one preprocessed image (`batch` of shape (1, 3, H, W)).

    `head` maps the output of `features` to class logits. Returns the map at the activation's
    resolution, scaled to [0, 1], and the class it explains (the predicted one unless `target`).
    """
    split = last_conv_index(features) + 1
    if split < len(features) and isinstance(features[split], nn.ReLU):
        split += 1
    parameter = next(features.parameters())
    # Callers may run inside torch.inference_mode(); autograd needs it off for this function.
    with torch.inference_mode(False):
        with torch.no_grad():
            activation = features[:split](batch.to(device=parameter.device, dtype=parameter.dtype))
        activation = activation.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = head(features[split:](activation))
            if target is None:
                target = int(logits[0].argmax())
            # autograd.grad, not backward(): gradients reach only the activation, never the
            # shared parameters' .grad, so concurrent explanations do not interfere.
            (gradient,) = torch.autograd.grad(logits[0, target], activation)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activation.detach()).sum(dim=1))[0]
    cam = cam.float().cpu().numpy()
    peak = float(cam.max())
    if peak > 0:
        cam /= peak
    return cam, target


def place_on_image(cam: np.ndarray, *, crop_box: Box, image_size: tuple[int, int], max_side: int = 512) -> np.ndarray:
    """Map a Grad-CAM computed on a crop back onto the whole image.

    `crop_box` is the (x, y, w, h) region of the original image that was resized to the network
    input; `image_size` is the original (width, height). The result has the image's aspect ratio
    (its long side at most `max_side`), the map stretched over the crop region and zero elsewhere.
    """
    width, height = image_size
    scale = min(1.0, max_side / max(width, height))
    out_width, out_height = max(1, round(width * scale)), max(1, round(height * scale))
    heatmap = np.zeros((out_height, out_width), dtype=np.float32)
    x, y, w, h = crop_box
    left, top = int(round(x * scale)), int(round(y * scale))
    right = min(out_width, max(left + 1, int(round((x + w) * scale))))
    bottom = min(out_height, max(top + 1, int(round((y + h) * scale))))
    left, top = max(0, left), max(0, top)
    if right <= left or bottom <= top:
        return heatmap
    heatmap[top:bottom, left:right] = cv2.resize(cam, (right - left, bottom - top), interpolation=cv2.INTER_LINEAR)
    return np.clip(heatmap, 0.0, 1.0)


# The coloured region is the smallest set of hottest pixels that holds this share of the heatmap's
# mass: Grad-CAM spreads faint heat over the whole crop, and colouring all of it in proportion
# (as before) left the peak barely visible on real photos and the rest a haze.
MASS_SHARE = 0.8
# Opacity inside the region rises from MIN_ALPHA at its edge to MAX_ALPHA at the peak: strong
# enough to read on any skin tone, light enough to see the face beneath.
MIN_ALPHA = 0.45
MAX_ALPHA = 0.75


def hot_region(heatmap: np.ndarray, *, mass_share: float = MASS_SHARE) -> np.ndarray:
    """Boolean mask of the hottest pixels that together hold `mass_share` of the heatmap's mass."""
    values = heatmap.ravel()
    total = float(values.sum())
    if total <= 0:
        return np.zeros(heatmap.shape, dtype=bool)
    ordered = np.sort(values)[::-1]
    cutoff_index = int(np.searchsorted(np.cumsum(ordered), mass_share * total))
    threshold = ordered[min(cutoff_index, len(ordered) - 1)]
    return (heatmap >= threshold) & (heatmap > 0)


def render_overlay(image: Image.Image, heatmap: np.ndarray) -> bytes:
    """A PNG of the image with the heatmap's hot region coloured over it (plasma: violet for the
    edge of the region to yellow at the peak, readable with colour-blindness and distinct from
    skin), outlined so it shows on a small screen. Outside the region the photo is unchanged."""
    height, width = heatmap.shape
    base = np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    region = hot_region(heatmap)
    if not region.any():
        blended = base.round().astype(np.uint8)
    else:
        low, peak = float(heatmap[region].min()), float(heatmap.max())
        relative = np.clip((heatmap - low) / max(peak - low, 1e-6), 0.0, 1.0)
        # Plasma from its violet (0.15) up: its near-black start would only darken the face.
        heat8 = ((0.15 + 0.85 * relative) * 255).astype(np.uint8)
        colours = cv2.cvtColor(cv2.applyColorMap(heat8, cv2.COLORMAP_PLASMA), cv2.COLOR_BGR2RGB).astype(np.float32)
        alpha = np.where(region, MIN_ALPHA + (MAX_ALPHA - MIN_ALPHA) * relative, 0.0)[..., None]
        blended = (base * (1 - alpha) + colours * alpha).round().astype(np.uint8)
        contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        thickness = max(1, round(max(width, height) / 256))
        cv2.drawContours(blended, contours, -1, (255, 255, 255), thickness, lineType=cv2.LINE_AA)
    buffer = io.BytesIO()
    Image.fromarray(blended).save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def overlay_base64(image: Image.Image, heatmap: np.ndarray) -> str:
    """The overlay PNG as base64 text (for JSON; prefix `data:image/png;base64,` to display it)."""
    return base64.b64encode(render_overlay(image, heatmap)).decode("ascii")
