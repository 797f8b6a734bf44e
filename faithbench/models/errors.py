"""Errors of the models package (bad input: the CLI exits with code 2)."""


class CheckpointError(ValueError):
    """A weights file that cannot be used for this dataset (missing, unsafe, mismatched), or
    pretrained weights that cannot be had here."""


__all__ = ["CheckpointError"]
