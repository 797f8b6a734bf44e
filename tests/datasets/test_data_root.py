import pytest

from faithbench.datasets import DataError, data_root, resolve_path


def test_env_var_and_override(tmp_path, monkeypatch):
    monkeypatch.setenv("FAITHBENCH_DATA", str(tmp_path))
    assert data_root() == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    assert data_root(str(other)) == other  # the 'root' parameter wins
    (other / "a.txt").write_text("x")
    assert resolve_path("a.txt", str(other)) == other / "a.txt"
    with pytest.raises(DataError, match="file not found: .*b.txt"):
        resolve_path("b.txt", str(other))


def test_unset_or_missing_root_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("FAITHBENCH_DATA", raising=False)
    with pytest.raises(DataError, match="FAITHBENCH_DATA"):
        data_root()
    monkeypatch.setenv("FAITHBENCH_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"nope .*FAITHBENCH_DATA.* does not exist"):
        data_root()
    with pytest.raises(ValueError, match="'root' parameter"):  # a ValueError: suite validation reports it
        data_root(tmp_path / "nope")
