"""Temporal models: a frozen backbone checkpoint trained on single visits, a head trained on its
features, explainers end to end through the backbone."""

import pytest
import torch

from faithbench.config import load_suite
from faithbench.datasets.longitudinal import PhantomLongitudinal
from faithbench.models.checkpoint import ModelSpec, load_checkpoint
from faithbench.models.temporal import TemporalClassifier
from faithbench.registry import explainers, models
from faithbench.store import Cache


@pytest.mark.parametrize("name", ["temporal_mlp", "temporal_gru"])
def test_shapes_and_frozen_backbone(name):
    model = models.get(name)(1, 2, (3, 32, 32), backbone_params={"width": 4, "depth": 2})
    assert isinstance(model, TemporalClassifier) and model.spatial_dims == 3
    x = torch.rand(2, 1, 3, 32, 32)
    assert model(x).shape == (2, 2)
    assert model.encoder(x).shape == (2, 8, 3, 16, 16)  # (B, F, T, h, w)
    assert model.frozen_features(x).shape == (2, 3, 8)
    model.train()
    assert not model.encoder.training and model.head.training  # BatchNorm of the backbone never moves
    # the sequence head sees each visit: changing only visit 0 changes the output
    y = x.clone()
    y[:, :, 0] = 0
    model.eval()
    assert not torch.allclose(model(x), model(y))
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        models.get(name)(1, 2, (32, 32))


def test_recipe_trains_backbone_on_visits_then_head(tmp_path):
    kw = dict(size=32, seq_len=3, lesion_contrast=0.6)
    train, val, test = (PhantomLongitudinal(s, n=n, **kw) for s, n in (("train", 80), ("val", 20), ("test", 20)))
    spec = ModelSpec(name="temporal_mlp",
                     params={"backbone": "small_cnn", "backbone_params": {"width": 4, "depth": 2},
                             "backbone_recipe": {"epochs": 2, "lr": 0.003}},
                     recipe={"epochs": 3, "lr": 0.001})
    cache = Cache(tmp_path / "cache")
    ckpt = load_checkpoint(spec, train, val, test, 0, cache)
    info = ckpt.info["backbone"]
    assert info["origin"] == "trained" and set(info["metrics"]) >= {"accuracy", "auc"}
    # the backbone in the temporal model is the cached 2D checkpoint, untouched by the head's training
    backbone = load_checkpoint(ModelSpec(name="small_cnn", params={"width": 4, "depth": 2},
                                         recipe={"epochs": 2, "lr": 0.003}),
                               train.visits(), val.visits(), test.visits(), 0, cache)
    assert backbone.origin == "cache" and backbone.key == info["key"]
    for k, v in backbone.model.state_dict().items():
        assert torch.equal(ckpt.model.encoder.backbone.state_dict()[k], v), k
    assert set(ckpt.metrics) >= {"accuracy", "f1", "auc", "loss"}
    again = load_checkpoint(spec, train, val, test, 0, cache)
    assert again.origin == "cache"
    x = torch.stack([test[i].image for i in range(4)])
    assert torch.equal(again.model(x), ckpt.model(x))

    # explainers run end to end through the frozen backbone, on a model loaded from the cache:
    # (B, T, H, W) maps
    model = again.model
    target = model(x).argmax(-1)
    for name in ("saliency", "integrated_gradients", "gradcam", "temporal_occlusion"):
        explainer = explainers.get(name)(**({"n_steps": 4} if name == "integrated_gradients" else {}))
        assert explainer.unsupported_reason(model, x) is None
        s = explainer(model, x, target)
        assert s.shape == (4, 3, 32, 32) and torch.isfinite(s).all()
        if name == "gradcam":
            assert explainer.last_info["target_layer"] == "encoder"
            assert explainer.last_info["grid"] == [3, 16, 16]
            assert s.flatten(2).std(2).gt(0).all()  # a spatial map in every visit, not a constant


def test_longitudinal_suite_validates():
    suite = load_suite("longitudinal")
    assert [m.name for m in suite.models] == ["temporal_mlp", "temporal_gru"]
    assert {"visit_pointing", "temporal_deletion", "temporal_insertion"} <= {m.name for m in suite.metrics}
