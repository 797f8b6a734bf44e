"""Checkpoints: architectures (registry ``models``), training recipes and weights files."""

from faithbench.models.architectures import build_model, resnet18, vit_tiny
from faithbench.models.temporal import TemporalClassifier, temporal_gru, temporal_mlp
from faithbench.models.checkpoint import Checkpoint, CheckpointError, ModelSpec, load_checkpoint
from faithbench.models.training import Recipe, classification_metrics, train_model

__all__ = ["build_model", "resnet18", "vit_tiny", "Checkpoint", "CheckpointError", "ModelSpec",
           "load_checkpoint", "Recipe", "TemporalClassifier", "temporal_gru", "temporal_mlp", "classification_metrics", "train_model"]
