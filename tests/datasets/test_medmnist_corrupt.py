"""A corrupt or truncated MedMNIST .npz is bad input naming the file (exit 2), not a crash (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from faithbench.cli import main
from faithbench.datasets.paths import DataError
from faithbench.registry import datasets


def _npz(folder, name="breastmnist.npz"):
    folder.mkdir(parents=True)
    images, labels = np.arange(4 * 28 * 28, dtype=np.uint8).reshape(4, 28, 28), np.zeros((4, 1), np.uint8)
    arrays = {f"{s}_{k}": (images if k == "images" else labels) for s in ("train", "val", "test")
              for k in ("images", "labels")}
    np.savez_compressed(folder / name, **arrays)
    return folder / name


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_inside(path):
    blob = bytearray(path.read_bytes())
    blob[200] ^= 0xFF  # inside the first compressed member: a CRC or inflate error on read
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("damage", [_truncate, _flip_inside])
def test_corrupt_npz_names_the_file(tmp_path, damage):
    path = _npz(tmp_path / "medmnist")
    damage(path)
    with pytest.raises(DataError, match=r"medmnist: cannot read .*breastmnist\.npz: .*corrupt or partial download"):
        datasets.get("medmnist")(split="train", flag="breastmnist", root=str(tmp_path))


def test_corrupt_npz_exits_2_at_validation(tmp_path, capsys):
    _truncate(_npz(tmp_path / "medmnist"))
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: t\ndatasets: [{{name: medmnist, params: {{flag: breastmnist, root: '{tmp_path}'}}}}]\n"
                     "models: [{name: small_cnn, recipe: default}]\nexplainers: [random]\nmetrics: [deletion_auc]\n")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "s.yaml: datasets[0].params: medmnist: cannot read " in err and "breastmnist.npz" in err
