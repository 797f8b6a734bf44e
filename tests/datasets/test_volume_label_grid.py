"""Label maps on another affine of the same grid (flipped, transposed, cropped) or on another grid:
a review (newuser15 D1) found a flipped copy of a label map losing the lesion voxels of its edge slice."""

import warnings

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from faithbench.datasets import VolumeDataset  # noqa: E402
from faithbench.datasets.volume_files import grid_map, resample_label_map  # noqa: E402

# spacing and origin as an NRRD header gives them (0.7 and -1.23 are not exact binary fractions)
AFFINE = np.array([[-0.7, 0.0, 0.0, 91.23], [0.0, -0.7, 0.0, -1.23], [0.0, 0.0, 6.5, -7.8], [0.0, 0.0, 0.0, 1.0]])
SHAPE = (32, 24, 8)


def _labels():
    lab = (np.random.default_rng(0).random(SHAPE) > 0.5).astype(np.int16)
    lab[0], lab[-1], lab[:, 0], lab[:, -1], lab[..., 0], lab[..., -1] = 1, 1, 1, 1, 1, 1  # every face labelled
    return lab


def _flipped(data, affine, axis):
    """The same voxels stored with ``axis`` reversed: its direction negated, the origin on the last voxel."""
    out = affine.copy()
    out[:3, 3] = affine[:3, 3] + affine[:3, axis] * (data.shape[axis] - 1)
    out[:3, axis] = -affine[:3, axis]
    return np.flip(data, axis).copy(), out


def _load(tmp_path, image, image_affine, seg, seg_affine, **kw):
    nib.save(nib.Nifti1Image(image, image_affine), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(seg, seg_affine), tmp_path / "seg.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the "same shape, another affine" warning
        return VolumeDataset("test", items=[{"image": "img.nii.gz", "label_map": "seg.nii.gz"}], window=[0, 1],
                             root=str(tmp_path), **kw)[0]


@pytest.mark.parametrize("orientation", ["canonical", "as_stored"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_flipped_label_map_keeps_every_voxel(tmp_path, axis, orientation):
    lab = _labels()
    ref = _load(tmp_path, lab.astype(np.float32), AFFINE, lab, AFFINE, orientation=orientation).masks["label_1"]
    assert int(ref.sum()) == int(lab.sum())
    seg, seg_affine = _flipped(lab, AFFINE, axis)
    flipped = _load(tmp_path, lab.astype(np.float32), AFFINE, seg, seg_affine, orientation=orientation)
    assert int((flipped.masks["label_1"] != ref).sum()) == 0  # old code: the flipped edge slice lost


def test_a_flipped_image_keeps_its_label_maps_voxels(tmp_path):
    lab = _labels()
    image, image_affine = _flipped(lab.astype(np.float32), AFFINE, 0)
    s = _load(tmp_path, image, image_affine, lab, AFFINE, orientation="as_stored")
    assert np.array_equal(s.masks["label_1"].numpy(), s.image[0].numpy() > 0)  # the mask follows the image
    assert int(s.masks["label_1"].sum()) == int(lab.sum())
    c = _load(tmp_path, image, image_affine, lab, AFFINE)
    assert np.array_equal(c.masks["label_1"].numpy(), c.image[0].numpy() > 0)


def test_a_transposed_and_cropped_label_map_is_copied_exactly():
    lab = _labels()
    perm = np.eye(4)[[2, 0, 1, 3]].T  # stored (k, i, j)
    seg_affine = AFFINE @ perm
    seg = lab.transpose(2, 0, 1).copy()
    assert np.array_equal(resample_label_map(seg, seg_affine, SHAPE, AFFINE), lab)
    crop_affine = AFFINE.copy()
    crop_affine[:3, 3] = AFFINE[:3, :3] @ [3, 5, 2] + AFFINE[:3, 3]  # its voxel 0 is the image's (3, 5, 2)
    out = resample_label_map(lab[3:10, 5:9, 2:4], crop_affine, SHAPE, AFFINE)
    expected = np.zeros(SHAPE, lab.dtype)
    expected[3:10, 5:9, 2:4] = lab[3:10, 5:9, 2:4]
    assert np.array_equal(out, expected)


def test_grid_map_recognises_signed_permutations_only():
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = 31.000000000000007
    assert grid_map(flip).tolist() == [[-1, 0, 0, 31], [0, 1, 0, 0], [0, 0, 1, 0]]
    shifted = np.eye(4)
    shifted[1, 3] = 0.3
    assert grid_map(shifted) is None
    c = np.cos(np.pi / 4)
    rotated = np.array([[c, -c, 0, 0], [c, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    assert grid_map(rotated) is None
    assert grid_map(np.diag([2.0, 1.0, 1.0, 1.0])) is None  # another spacing: not a permutation


def test_another_grid_takes_the_id_of_the_voxel_holding_each_centre():
    """Off the grid: nearest neighbour, compared with a by-hand rule, including centres within half a
    voxel beyond the source's edge (which scipy's constant mode read as background)."""
    lab = _labels()[:6, :5, :4]
    seg_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    seg_affine[:3, 3] = [0.3, -0.3, 0.2]  # the image's voxel centres lie 0.3 voxel off the label map's
    out = resample_label_map(lab, seg_affine, (7, 6, 5), np.eye(4))
    expected = np.zeros((7, 6, 5), lab.dtype)
    for i, j, k in np.ndindex(7, 6, 5):
        src = np.rint(np.array([i - 0.3, j + 0.3, k - 0.2])).astype(int)
        if (src >= 0).all() and (src < lab.shape).all():
            expected[i, j, k] = lab[tuple(src)]
    assert np.array_equal(out, expected)
    assert out[0, 0, 0] == lab[0, 0, 0]  # centre at -0.3 along i: inside voxel 0's extent
    half = np.diag([0.5, 0.5, 0.5, 1.0])  # a label map on a grid twice as fine, voxel corners aligned
    half[:3, 3] = -0.25
    fine = np.kron(lab, np.ones((2, 2, 2), lab.dtype))
    assert np.array_equal(resample_label_map(fine, half, lab.shape, np.eye(4)), lab)
