import pytest

from faithbench.config import SuiteError, load_suite

SUITES = ("medmnist2d", "volumes3d", "scorecam3d")


@pytest.mark.parametrize("name", SUITES)
def test_suites_validate_with_the_data_root(real_data, name):
    real_data("medmnist/pneumoniamnist.npz", "medmnist/adrenalmnist3d.npz", "medmnist/adrenalmnist3d_64.npz")
    pytest.importorskip("monai")
    pytest.importorskip("nilearn")
    suite = load_suite(name)
    assert suite.name == name


def test_without_a_data_root_validation_names_the_setting(monkeypatch):
    monkeypatch.delenv("FAITHBENCH_DATA", raising=False)
    with pytest.raises(SuiteError, match=r"datasets\[0\]\.params: .*FAITHBENCH_DATA"):
        load_suite("medmnist2d")
