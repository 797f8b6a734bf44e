"""2D image files as arrays: one intensity rule per file type, one rule for masks, one square size.

Intensity: 8-bit files (grey, or colour through PIL's luma ``L``) are divided by 255; 16-bit ones
by 2^bits − 1 (65535; ``bits: 12`` for 12-bit data stored in 16-bit files, 4095), whatever each
image's own maximum, so that two images of one scanner keep their ratio of brightness (dividing by
255 or 65535 after each image's maximum made them differ 257-fold by one pixel, a held-out review).
Masks: nonzero is inside; in a JPEG, above half of the mask's own maximum (:func:`binarise_mask`).
DICOM: RescaleSlope/Intercept, then each image's own min-max (MONOCHROME1 inverted). Float files,
32-bit integer files with values outside 0-65535, multi-frame DICOM, multi-page TIFF and images
above Pillow's decompression-bomb limit are refused, naming the file. EXIF orientation is applied,
as viewers show the image (and a mask drawn on it).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from faithbench.datasets.paths import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm")
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def is_hidden(rel: Path) -> bool:
    """A file or folder whose name starts with a dot (``._x.png``, macOS's AppleDouble copies on
    exFAT/SMB; ``.ipynb_checkpoints``), never an image of the dataset."""
    return any(part.startswith(".") for part in rel.parts)


# files a user may take for images that ``folder`` does not read (Pillow reads some, but their rules are
# not set: palettes, animation); a scan warns of them instead of skipping them silently (a review)
OTHER_IMAGE_SUFFIXES = (".webp", ".gif", ".jfif", ".jpe", ".jp2", ".j2k", ".jpx", ".heic", ".heif", ".avif", ".tga",
                        ".ppm", ".pgm", ".pbm", ".pnm", ".ico", ".psd", ".svg", ".dicom", ".ima", ".nii", ".nii.gz",
                        ".nrrd", ".nhdr", ".mgz", ".mgh", ".mha", ".mhd")


# of those, the ones :func:`read_image` cannot open at all (volumes, vector images, DICOM not named .dcm): a labels
# CSV row naming one is refused (:func:`unread_format`); Pillow opens the others where a CSV row names them
UNOPENED_SUFFIXES = (".svg", ".dicom", ".ima", ".nii", ".nii.gz", ".nrrd", ".nhdr", ".mgz", ".mgh", ".mha", ".mhd")


def is_other_image(path: Path) -> bool:
    """Whether ``path`` looks like an image ``folder`` does not read: an image-like suffix, or a DICOM
    file (``DICM`` after its 128-byte preamble) without ``.dcm`` (no suffix, or ``1.2.840.3``'s digits).
    A scan skips such files (and warns of them)."""
    return path.name.lower().endswith(OTHER_IMAGE_SUFFIXES) or _dicom_without_dcm(path)


def _dicom_without_dcm(path: Path) -> bool:
    if path.suffix and not path.suffix[1:].isdigit():
        return False
    try:
        with path.open("rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


def unread_format(path: Path, given: str, reader: str) -> str | None:
    """Why a labels CSV's row naming ``given`` (the file ``path``) cannot be read by ``reader``: a format
    :func:`read_image` cannot open, known by its name (:data:`UNOPENED_SUFFIXES`, a DICOM file without
    ``.dcm``), else None: ``folder`` and ``longitudinal_folder`` refuse such a row at validation (a review: a NIfTI
    row failed the run only when it read the image). A ``.gif`` or ``.webp`` row is read, as before."""
    if not (path.name.lower().endswith(UNOPENED_SUFFIXES) or _dicom_without_dcm(path)):
        return None
    return (f"{given!r} is of an image format that {reader} does not read: expected {', '.join(IMAGE_SUFFIXES)}; "
            "convert it to PNG (a DICOM file: name it .dcm)")


def scan_folder(folder: Path, skip: Path | None = None) -> tuple[list[Path], list[Path]]:
    """The image files under ``folder`` (by suffix, sorted) and the files skipped that look like
    images of another format (:func:`is_other_image`), without hidden files and folders and without
    ``skip`` (a mask folder inside the image folder). Sub-folders that are symbolic links are
    followed, as a labels CSV's paths are (``Path.rglob`` did not, which dropped a linked class
    folder's images without a word, a review); a link to a folder that holds it (a loop) is a
    :class:`DataError` naming the link."""
    images: list[Path] = []
    others: list[Path] = []
    stack = [(folder, (os.path.realpath(folder),))]
    while stack:
        here, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError as exc:
            raise DataError(f"{here}: cannot list the folder: {exc.strerror}") from None
        for entry in entries:
            path = here / entry.name
            if entry.name.startswith(".") or (skip is not None and path.is_relative_to(skip)):
                continue
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()  # both follow a symbolic link
            except OSError:  # a link to itself (ELOOP): broken, as a link to nothing is
                continue
            if is_dir:
                real = os.path.realpath(path)
                if real in ancestors:
                    raise DataError(f"{path}: a symbolic link to {real}, a folder that holds it (a loop): expected "
                                    "links to folders outside their own path")
                stack.append((path, ancestors + (real,)))
            elif is_file:
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    images.append(path)
                elif is_other_image(path):
                    others.append(path)
    return sorted(images), sorted(others)


def scan_images(folder: Path, skip: Path | None = None) -> list[Path]:
    """The image files of :func:`scan_folder`."""
    return scan_folder(folder, skip)[0]


def read_dicom(path: Path) -> np.ndarray:
    """One DICOM frame as float32 (H, W) in [0, 1]: rescaled, then min-max (MONOCHROME1 inverted)."""
    try:
        import pydicom
    except ImportError:
        raise DataError(f"{path}: reading DICOM needs pydicom: pip install pydicom") from None
    try:
        ds = pydicom.dcmread(str(path))
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        if frames > 1:
            raise DataError(f"{path}: a multi-frame DICOM ({frames} frames of {ds.Rows}x{ds.Columns}): a 2D "
                            "dataset takes one image per file; save the frame you mean as a file of its own")
        arr = ds.pixel_array.astype(np.float32)
    except DataError:
        raise
    except Exception as exc:  # pydicom raises several types for unreadable pixel data
        raise DataError(f"{path}: cannot read DICOM pixels: {exc}") from None
    arr = arr * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
    if arr.ndim == 3:  # (H, W, samples): colour
        arr = arr.mean(-1)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
        arr = 1.0 - arr  # MONOCHROME1 stores white as 0
    return arr


def _scaled(im: Any, path: Path, bits: int) -> np.ndarray:
    """The pixels of a PIL image by the module's rule (see its docstring)."""
    mode = im.mode
    if mode in SIXTEEN_BIT or mode == "I":  # "I": 32-bit integers, taken as 16-bit when they fit
        arr = np.asarray(im, dtype=np.float32)
        top, lo, hi = 2**bits - 1, float(arr.min()), float(arr.max())
        if lo < 0 or hi > top:
            hint = (f"set the dataset's bits to {int(hi).bit_length()} or more" if lo >= 0 and hi <= 65535
                    else "expected 8- or 16-bit integer pixels (save it as an 8- or 16-bit PNG)")
            raise DataError(f"{path}: pixel values {lo:g} to {hi:g} (mode {mode!r}) exceed 0 to {top} "
                            f"(bits {bits}): {hint}")
        return arr / top
    if mode.startswith("F"):
        raise DataError(f"{path}: image mode {mode!r} (float pixels) has no fixed scale: expected 8- or 16-bit "
                        "integer pixels (save it as an 8- or 16-bit PNG)")
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def _upright(im: Any) -> Any:
    """``im`` as a viewer shows it (its EXIF Orientation applied); as stored when its EXIF block
    cannot be parsed (Pillow raises SyntaxError on a block that is no TIFF header)."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(im)
    except (SyntaxError, ValueError, struct.error):
        return im


def read_image(path: Path, bits: int = 16) -> np.ndarray:
    """A greyscale image as float32 (H, W) in [0, 1], by the module's rule: 8-bit ÷ 255, 16-bit
    ÷ (2^bits − 1), DICOM min-max; EXIF orientation applied."""
    if path.suffix.lower() == ".dcm":
        return read_dicom(path)
    from PIL import Image

    try:
        with Image.open(path) as im:
            # a review: a TIFF stack was read as its first page; a JPEG's MPF preview (MPO, 2 frames) is no stack
            if im.format == "TIFF" and (pages := int(getattr(im, "n_frames", 1) or 1)) > 1:
                raise DataError(f"{path}: a multi-page TIFF ({pages} pages of {im.width}x{im.height}): a 2D dataset "
                                "takes one image per file; save the page you mean as a file of its own")
            return _scaled(_upright(im), path, bits)
    except Image.DecompressionBombError as exc:  # no OSError: it failed the cell without the file (a review)
        raise DataError(f"{path}: cannot read image: {exc} (Pillow's limit is 2 x PIL.Image.MAX_IMAGE_PIXELS, "
                        f"{2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels; a plugin may raise Image.MAX_IMAGE_PIXELS "
                        "for a trusted file, or save it smaller)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read image: {exc}") from None


LOSSY_SUFFIXES = (".jpg", ".jpeg")


def binarise_mask(mask: np.ndarray, lossy: bool = False) -> np.ndarray:
    """A mask read by :func:`read_image` as bool. Lossless files (PNG, TIFF, BMP, DICOM): inside is
    nonzero, so every region of a label map (1..K, 85/170/255), an instance map or a coloured mask
    is kept (a rule of "above half range" dropped every value up to 127 when another region was
    above it, a held-out review). Lossy files (``lossy``: JPEG): inside is above half of the mask's
    own maximum, so the halo of low values JPEG puts around a disc stays outside whatever its
    colour (+49 % of area on a review's red disc); an all-black mask stays empty."""
    if not lossy:
        return mask > 0
    top = float(mask.max()) if mask.size else 0.0
    return mask > top / 2 if top > 0 else np.zeros(mask.shape, dtype=bool)


def fit_square(x: Tensor, size: int, fit: str, mode: str) -> Tensor:
    """(C, H, W) -> (C, size, size): centre ``crop`` to a square, ``pad`` to one, or ``squash``."""
    h, w = x.shape[-2:]
    if fit == "crop":
        s = min(h, w)
        x = x[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    elif fit == "pad":
        s = max(h, w)
        x = F.pad(x, [(s - w) // 2, s - w - (s - w) // 2, (s - h) // 2, s - h - (s - h) // 2])
    kwargs = {"antialias": True} if mode == "bilinear" else {}
    return F.interpolate(x[None].float(), size=(size, size), mode=mode, **kwargs)[0]


def resize_mask(mask: Tensor, size: int, fit: str) -> Tensor:
    """``mask (1, H, W)`` bool -> ``(size, size)`` bool through the image's :func:`fit_square`
    (bilinear with antialias), then share > 0.5, so the mask stays on its lesion (nearest put it
    (k - 1) / 2 source pixels off at a downscale of k). A mask with some share keeps at least its
    pixel of largest share, so a lesion smaller than a pixel does not vanish (one cropped away does)."""
    share = fit_square(mask.float(), size, fit, "bilinear")[0]
    out = share > 0.5
    if not bool(out.any()) and float(share.max()) > 0:
        out.view(-1)[int(share.argmax())] = True
    return out


__all__ = ["IMAGE_SUFFIXES", "LOSSY_SUFFIXES", "binarise_mask", "fit_square", "is_hidden", "is_other_image",
           "read_dicom", "read_image", "resize_mask", "scan_folder", "scan_images", "unread_format"]
