"""What an image in a request costs in input tokens (OpenAI's vision pricing rules).

Two billing schemes exist. Tile models scale the image to fit 2048x2048, then (if larger) so its
shortest side is 768 px, and bill ``base + tile * number_of_512px_tiles`` (``detail: low`` bills
``base`` alone). Patch models (gpt-4.1-mini/nano, o4-mini, gpt-5-mini/nano) bill the number of
32x32 patches covering the image, at most 1536, times a per-model multiplier (OpenAI images guide).

Sizes come from the image header of a base64 data URL: only the bytes the header needs are
decoded (a JPEG's segments are skipped over without decoding them), so a 5 MB image costs a few
microseconds. A remote URL or a file id has no size we can read: it is priced as a typical
1024x768 photo and reported as an estimate.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from tokenmw._tokens.models import base_model

__all__ = ["ImageRule", "data_url_size", "image_rule_for", "image_tokens"]

ASSUMED_SIZE = (1024, 768)
"""Size assumed for an image we cannot measure: a common photo; 4 tiles, or 768 patches."""

_FIT = 2048
_SHORT_SIDE = 768
_TILE = 512
_PATCH = 32
_MAX_PATCHES = 1536


@dataclass(frozen=True, slots=True)
class ImageRule:
    """How one model family bills images: tiles (``base``/``tile``) or patches (``multiplier``)."""

    base: int = 85
    tile: int = 170
    multiplier: float = 0.0
    """Tokens per 32-px patch; non-zero means the patch scheme."""


_GPT_4O = ImageRule(85, 170)
# Longest prefix wins; names are matched after dropping a "provider/" and an "ft:" prefix.
_RULES_BY_PREFIX: tuple[tuple[str, ImageRule], ...] = tuple(
    sorted(
        {
            "gpt-4o-mini": ImageRule(2833, 5667),
            "gpt-4o": _GPT_4O,
            "chatgpt-4o": _GPT_4O,
            "gpt-4.1-mini": ImageRule(multiplier=1.62),
            "gpt-4.1-nano": ImageRule(multiplier=2.46),
            "gpt-4.1": _GPT_4O,
            "gpt-4.5": _GPT_4O,
            "gpt-4-turbo": _GPT_4O,
            "gpt-5-mini": ImageRule(multiplier=1.62),
            "gpt-5-nano": ImageRule(multiplier=2.46),
            "gpt-5": ImageRule(70, 140),
            "o1": ImageRule(75, 150),
            "o3": ImageRule(75, 150),
            "o4-mini": ImageRule(multiplier=1.72),
            "computer-use": ImageRule(65, 129),
        }.items(),
        key=lambda item: -len(item[0]),
    )
)


def image_rule_for(model: str | None) -> ImageRule:
    """The image billing rule of a model; unknown models are billed like gpt-4o."""
    if not model:
        return _GPT_4O
    base = base_model(model)
    for prefix, rule in _RULES_BY_PREFIX:
        if base.startswith(prefix):
            return rule
    return _GPT_4O


def image_tokens(url: str | None, detail: object, rule: ImageRule) -> tuple[int, bool]:
    """``(tokens, exact)`` for one image; ``exact`` is False when the size had to be assumed."""
    if rule.multiplier == 0.0 and detail == "low":
        return rule.base, True  # low detail costs the base whatever the size
    size = data_url_size(url) if url else None
    exact = size is not None
    width, height = size if size is not None else ASSUMED_SIZE
    if rule.multiplier:
        # The guide gives no low-detail price for patch models: bill the patches, flag it.
        return _patch_tokens(width, height, rule.multiplier), exact and detail != "low"
    return rule.base + rule.tile * _tiles(width, height), exact


def _tiles(width: int, height: int) -> int:
    longest = max(width, height)
    if longest > _FIT:
        width, height = width * _FIT // longest, height * _FIT // longest
    shortest = min(width, height)
    if shortest > _SHORT_SIDE:
        width, height = width * _SHORT_SIDE // shortest, height * _SHORT_SIDE // shortest
    return -(-width // _TILE) * -(-height // _TILE)


def _patch_tokens(width: int, height: int, multiplier: float) -> int:
    patches = -(-width // _PATCH) * -(-height // _PATCH)
    if patches > _MAX_PATCHES:
        # Shrink to fit the patch budget, then so that whole patches fit the narrower side.
        shrink = (_PATCH * _PATCH * _MAX_PATCHES / (width * height)) ** 0.5
        w_patches, h_patches = width * shrink / _PATCH, height * shrink / _PATCH
        shrink *= min(int(w_patches) / w_patches, int(h_patches) / h_patches)
        width, height = int(width * shrink), int(height * shrink)
        patches = -(-width // _PATCH) * -(-height // _PATCH)
    return round(min(patches, _MAX_PATCHES) * multiplier)


# -- image headers ---------------------------------------------------------------------------


class _Base64Window:
    """Random access to the bytes of base64 text, decoding only the 4-character groups asked for."""

    __slots__ = ("_end", "_start", "_text")

    def __init__(self, text: str, start: int) -> None:
        self._text = text
        self._start = start
        self._end = len(text)

    def read(self, offset: int, size: int) -> bytes:
        first = offset // 3
        last = -(-(offset + size) // 3)
        lo = self._start + first * 4
        chunk = self._text[lo : min(self._start + last * 4, self._end)]
        if not chunk:
            return b""
        chunk += "=" * (-len(chunk) % 4)
        try:
            data = binascii.a2b_base64(chunk)
        except (binascii.Error, ValueError):
            return b""
        skip = offset - first * 3
        return data[skip : skip + size]


_MAX_JPEG_SEGMENTS = 256


def data_url_size(url: str) -> tuple[int, int] | None:
    """``(width, height)`` of a base64 PNG, JPEG, GIF or WebP data URL; ``None`` if unreadable."""
    if not url.startswith("data:"):
        return None
    comma = url.find(",", 5, 300)
    if comma < 0 or not url[5:comma].lower().endswith(";base64"):
        return None
    window = _Base64Window(url, comma + 1)
    head = window.read(0, 32)
    size: tuple[int, int] | None = None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        size = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        size = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        size = _webp_size(head)
    elif head[:2] == b"\xff\xd8":
        size = _jpeg_size(window)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        height = int.from_bytes(head[28:30], "little") & 0x3FFF
        return width, height
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xDA)) | {0x01}


def _jpeg_size(window: _Base64Window) -> tuple[int, int] | None:
    # Walk the marker segments after SOI; each says its own length, so EXIF thumbnails and ICC
    # profiles are skipped without being decoded. The first start-of-frame has the size.
    pos = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        header = window.read(pos, 9)
        if len(header) < 4 or header[0] != 0xFF:
            return None
        marker = header[1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        if marker in _SOF_MARKERS:
            if len(header) < 9:
                return None
            return int.from_bytes(header[7:9], "big"), int.from_bytes(header[5:7], "big")
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before them
            return None
        pos += 2 + int.from_bytes(header[2:4], "big")
    return None
