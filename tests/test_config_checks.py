"""Validation finds what the run would refuse (issue 17): parameter types and values, 2D/3D,
target layers, missing masks, colliding file names."""

from __future__ import annotations

import re
import warnings

import pytest

from faithbench.config import SuiteError, SuiteWarning, load_suite

BASE = """name: t
datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]
models: [{name: small_cnn, recipe: {epochs: 1}}]
explainers: [gradcam, random]
metrics: [pointing_game]
"""


def _load(tmp_path, text):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return load_suite(path)


def _load_silently(tmp_path, *texts):
    """Load each suite text with every SuiteWarning an error: the cases that must not warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SuiteWarning)
        for text in texts:
            _load(tmp_path, text)


@pytest.mark.parametrize("old, new, expected", [
    ("size: 32", 'size: "64"', r"suite.yaml: datasets\[0\].params.size: expected int, got str '64'"),
    ("size: 32", "size: 32, noise: yes", r"datasets\[0\].params.noise: expected float, got bool True"),
    ("recipe:", "params: {width: '8'}, recipe:", r"models\[0\].params.width: expected int, got str '8'"),
    ("recipe:", "params: {pool: median}, recipe:",
     r"models\[0\].params: cannot build 'small_cnn' for dataset 'phantom_cxr' \(1 channel, size \(32, 32\)\): "
     r"small_cnn: expected pool 'avg' or 'max', got 'median'"),
    ("recipe:", "params: {in_chans: 3}, recipe:",
     r"models\[0\].params: cannot build 'small_cnn' .*: model 'small_cnn': in_chans come from the dataset \(its "
     r"channels, classes and image size\), not from params: remove 'in_chans'"),
    ("recipe:", "preprocess: nome, recipe:",  # was models[0].preprocess.literal['auto','none']: ...
     r"suite.yaml: models\[0\].preprocess: Input should be 'auto' or 'none', or a valid dictionary, got str "
     r"'nome'$"),
    ("recipe:", "preprocess: {mean: [0.5, x]}, recipe:",  # the mapping branch's own error, not the names'
     r"suite.yaml: models\[0\].preprocess.mean\[1\]: expected a number, got str 'x'$"),
    ("name: t", "name: t\nsamples: '8'", r"suite.yaml: samples: expected a number, got str '8'$"),
    # YAML's true/false is not a number (pydantic's lax mode read reliability: true as 1)
    ("name: t", "name: t\nreliability: true", r"suite.yaml: reliability: expected a number, got true$"),
    ("name: t", "name: t\nseeds: [0, no]", r"suite.yaml: seeds\[1\]: expected a number, got false$"),
    ("{epochs: 1}", "{epochs: 1, lr: yes}", r"suite.yaml: models\[0\].recipe.lr: expected a number, got true$"),
    ("recipe:", "preprocess: {std: [true]}, recipe:", r"models\[0\].preprocess.std\[0\]: expected a number"),
    # finite numbers (a fuzzing review: std .inf showed the network a blank image, lr .inf trained NaN)
    ("recipe:", "preprocess: {std: [.inf]}, recipe:", r"models\[0\].preprocess.std\[0\]: expected a finite "
                                                       r"number, got inf$"),
    ("{epochs: 1}", "{epochs: 1, lr: .inf}", r"suite.yaml: models\[0\].recipe.lr: expected a finite number, got inf$"),
    # NaN fails every bound: it was "lr: Input should be greater than 0" (a fuzzing review)
    ("{epochs: 1}", "{epochs: 1, lr: .nan}", r"suite.yaml: models\[0\].recipe.lr: expected a finite number, got nan$"),
    ("name: t", "name: t\nregions: {grid: [1, 3], alpha: .nan}", r"suite.yaml: regions.alpha: expected a finite "
                                                                 r"number, got nan$"),
    ("recipe:", "preprocess: {channels: [-1]}, recipe:", r"models\[0\].preprocess.channels\[0\]: Input should be "
                                                          r"greater than or equal to 0$"),
    ("recipe:", "preprocess: {size: [1000000, 32]}, recipe:", r"models\[0\].preprocess.size\[0\]: Input should be "
                                                               r"less than or equal to 8192$"),
    ("name: t", "name: t\ntarget: {classes: [nodule, nodule]}",  # was: duplicate rows after the whole run
     r"suite.yaml: target.classes: expected unique names, got \['nodule', 'nodule'\]$"),
    ("params: {size: 32, n: 8}}", "params: {size: 32, n: 8}, models: []}",
     r"suite.yaml: datasets\[0\].models: List should have at least 1 item after validation, not 0$"),
    ("name: t", "name: t\nregions: {grid: [64, 3]}",  # was: every cell failed (exit 3)
     r"suite.yaml: regions.grid: \[64, 3\] has more cells along an axis than dataset 'phantom_cxr' has pixels "
     r"\(32, 32\); expected sizes between 1 and the image size$"),
    ("name: t", "name: t\nregions: {grid: [1, 3, 3]}",  # a fuzzing review: the run dropped it, exit 0
     r"suite.yaml: regions.grid: \[1, 3, 3\] has 3 sizes, but the datasets are 2D; expected one size per spatial "
     r"axis$"),
    # a fuzzing review: a preprocess error was blamed on params, and params listed what they refuse
    ("recipe:", "params: {pool: max}, preprocess: {std: [0]}, recipe:",
     r"suite.yaml: models\[0\].preprocess: cannot build 'small_cnn' .*: preprocess: std: expected positive values"),
    # a fuzzing review (clifuzz5 F4): std 1e-300 made every input inf, and the run advised a lower lr
    ("recipe:", "preprocess: {std: [1.0e-300]}, recipe:",
     r"suite.yaml: models\[0\].preprocess: cannot build 'small_cnn' .*: preprocess: std: expected positive values "
     r"from 1e-06 to 1e\+06 \(\(x - mean\) / std of an input in \[0, 1\] overflows float32 or flattens to a "
     r"constant beyond\), got \(1e-300,\)$"),
    ("recipe:", "preprocess: {std: [1.0e+300]}, recipe:",
     r"preprocess: std: expected positive values .*got \(1e\+300,\)$"),
    ("recipe:", "preprocess: {mean: [1.0e+300]}, recipe:",
     r"preprocess: mean: expected values from -1e\+06 to 1e\+06 \(inputs are in \[0, 1\]\), got \(1e\+300,\)$"),
    ("recipe:", "params: {a: 1}, recipe:", r"suite.yaml: models\[0\].params: unknown parameter 'a'; valid parameters: "
                                           r"width, depth, pool$"),
    # booleans as strict as a plugin's (a fuzzing review: optional: 0 and linear_probe: "yes" were taken)
    ("{epochs: 1}", "{epochs: 1, linear_probe: 'yes'}", r"suite.yaml: models\[0\].recipe.linear_probe: expected "
                                                       r"true or false, got str 'yes'$"),
    ("n: 8}}", "n: 8}, optional: 0}", r"suite.yaml: datasets\[0\].optional: expected true or false, got 0$"),
    ("recipe:", "replace_head: 1, recipe:", r"suite.yaml: models\[0\].replace_head: expected true or false, got 1$"),
    ("name: t", "name: t\ntarget: lable",
     r"suite.yaml: target: Input should be 'predicted', 'label' or 'each_positive', or a mapping \{classes: "),
    ("[gradcam, random]", "[{name: gradcam, params: {target_layer: layer4}}, random]",
     r"suite.yaml: explainers\[0\].params.target_layer: 'layer4' is not a module of model 'small_cnn'; "
     r"its top-level modules: "),
    # a CLI review: each passed validate, then gave constant maps (exit 0) or failed every cell after training
    ("[gradcam, random]", "[{name: gradcam, params: {target_layer: head}}, random]",
     r"suite.yaml: explainers\[0\].params.target_layer: 'head' outputs \(1, 2\) for an input of \(1, 1, 32, 32\): "
     r"not a \(B, C, \*grid\) feature map .*\(model 'small_cnn', dataset 'phantom_cxr'\); choose a convolutional"),
    ("[gradcam, random]", "[{name: occlusion, params: {window: 64}}, random]",
     r"suite.yaml: explainers\[0\].params: occlusion: parameter 'window' = 64 covers the whole 32 x 32 input: one "
     r"occlusion, so every map would be constant; set window below 32 \(dataset 'phantom_cxr'\)$"),
    ("[gradcam, random]", "[{name: occlusion, params: {stride: 64}}, random]",
     r"explainers\[0\].params: occlusion: parameter 'stride' = 64 is larger than the window \(8 x 8 on the 32 x 32 "
     r"input\), which captum refuses; set stride <= 8"),
    ("[gradcam, random]", "[{name: gradcam, params: {target_layer: ''}}, random]",
     r"suite.yaml: explainers\[0\].params: gradcam: parameter 'target_layer' expects a dotted module name "
     r"\(e.g. 'layer4'\) or null for the default, got an empty string$"),
    ("[gradcam, random]", "[{name: lime, params: {patch: 64}}, random]",
     r"explainers\[0\].params: lime: parameter 'patch' = 64 gives 1 feature on the 32 x 32 input, so every map "
     r"would be constant; set patch below 32"),
    ("[gradcam, random]", "[{name: kernel_shap, params: {patch: 32}}, random]",
     r"explainers\[0\].params: kernel_shap: parameter 'patch' = 32 gives 1 feature"),
    # a fuzzing review: grid 100000 failed every cell after training (800 GB), min_grid 64 was silently moot
    ("[gradcam, random]", "[{name: rise, params: {grid: 100000}}, random]",
     r"explainers\[0\].params: rise: parameter 'grid' = 100000 has more cells than the 32 x 32 input has pixels "
     r"along its largest side; expected grid <= 32"),
    ("[gradcam, random]", "[{name: gradcam, params: {min_grid: 64}}, random]",
     r"explainers\[0\].params: gradcam: parameter 'min_grid' = 64 is more than the input's largest side \(32 x "
     r"32\), so no layer's grid can reach it; expected min_grid <= 32"),
])
def test_run_refusals_found_at_validation(tmp_path, old, new, expected):
    assert old in BASE
    with pytest.raises(SuiteError, match=expected):
        _load(tmp_path, BASE.replace(old, new))


def test_explainer_sizes_within_the_image_validate(tmp_path):
    _load_silently(tmp_path, *(BASE.replace("[gradcam, random]", f"[{e}, random]") for e in (
        "{name: occlusion, params: {window: 31}}", "{name: occlusion, params: {window: 8, stride: 8}}",
        "{name: lime, params: {patch: 31}}", "{name: gradcam, params: {target_layer: features}}")))


def test_2d_model_on_3d_data(tmp_path):
    text = BASE.replace("{name: phantom_cxr, params: {size: 32, n: 8}}", "{name: phantom_organ3d, params: {n: 4}}")
    text = text.replace("small_cnn", "resnet18")
    with pytest.raises(SuiteError, match=r"models\[0\]: cannot build 'resnet18' for dataset 'phantom_organ3d' "
                                         r".*model 'resnet18' is 2D: expected a 2D input size"):
        _load(tmp_path, text)


def test_existing_target_layer_is_accepted(tmp_path):
    suite = _load(tmp_path, BASE.replace("[gradcam, random]", "[{name: gradcam, params: {target_layer: features}}, "
                                                               "random]"))
    assert suite.explainers[0].params == {"target_layer": "features"}


def test_missing_mask_warns_naming_it(tmp_path):
    with pytest.warns(SuiteWarning, match=r"metrics\[1\] 'on_marker' needs mask 'marker', which dataset "
                                          r"'phantom_cxr' lacks \(its masks: body, heart, lesion"):
        _load(tmp_path, BASE.replace("[pointing_game]", "[pointing_game, {name: relevance_mass, alias: on_marker, "
                                                        "params: {mask: marker}}]"))


@pytest.mark.parametrize("old, new, expected", [
    ("datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]",
     "datasets: [{name: phantom_cxr, alias: x/y, params: {size: 32, n: 8}}, "
     "{name: phantom_cxr, alias: x_y, params: {size: 32, n: 8, seed: 1}}]",
     r"datasets\[1\]: label 'x_y' and datasets\[0\] 'x/y' map to one file name 'x_y'"),
    ("models: [{name: small_cnn, recipe: {epochs: 1}}]",
     "models: [{name: small_cnn, alias: 'a b', recipe: {epochs: 1}}, {name: small_cnn, alias: 'a?b', recipe: default}]",
     r"models\[1\]: label 'a\?b' and models\[0\] 'a b' map to one file name 'a_b'"),
    ("datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]\nmodels: [{name: small_cnn, recipe: {epochs: 1}}]",
     "datasets: [{name: phantom_cxr, alias: a_b, params: {size: 32, n: 8}}, "
     "{name: phantom_cxr, alias: a, params: {size: 32, n: 8, seed: 1}}]\n"
     "models: [{name: small_cnn, alias: c, recipe: default}, {name: small_cnn, alias: b_c, recipe: default}]",
     r"datasets x models: labels a / b_c and a_b / c map to one plot file name 'a_b_c'"),
    ("models: [{name: small_cnn, recipe: {epochs: 1}}]",  # a fuzzing review: "File name too long" after training
     "models: [{name: small_cnn, alias: " + "m" * 300 + ", recipe: {epochs: 1}}]",
     r"datasets x models: labels phantom_cxr / m+ make a plot file name of 312 bytes before its prefix and suffix "
     r"\(at most 180\); give shorter aliases"),
])
def test_labels_mapping_to_one_file_name(tmp_path, old, new, expected):
    assert old in BASE
    with pytest.raises(SuiteError, match=expected):
        _load(tmp_path, BASE.replace(old, new))


def test_file_names_use_the_plots_mapping():
    from faithbench.names import safe_name
    from faithbench.reports.plots import safe_name as plots_safe_name

    for label in ["x/y", "x_y", "../etc", "a b", "ünï", "", "v1.2", "$x$"]:
        assert safe_name(label) == plots_safe_name(label)
    assert safe_name("x/y") == safe_name("x_y") == "x_y" and safe_name("../etc") == "_etc"


def test_counts_in_messages_agree_with_their_noun():
    from faithbench.names import counted

    assert counted(1, "channel") == "1 channel" and counted(3, "channel") == "3 channels"
    assert counted(0, "class", "classes") == "0 classes" and counted(1, "class", "classes") == "1 class"


def _weights(tmp_path, name="w.safetensors", builder="small_cnn", in_chans=1, classes=2, drop=(), **params):
    from faithbench.models import build_model
    from faithbench.store import save_tensors

    state = build_model(builder, in_chans, classes, (32, 32), **params).state_dict()
    path = tmp_path / name
    save_tensors(path, {k: v for k, v in state.items() if k not in drop})
    return path


def _with_weights(path, params="{width: 8}"):
    return BASE.replace("{name: small_cnn, recipe: {epochs: 1}}", f"{{name: small_cnn, params: {params}, "
                                                                  f"weights: {path}}}")


def test_weights_that_fit_pass(tmp_path):
    path = _weights(tmp_path, width=8)
    assert _load(tmp_path, _with_weights(path)).models[0].weights == str(path)


@pytest.mark.parametrize("kwargs, expected", [
    ({"width": 16}, r"shape mismatch: features.0.0.weight \(16, 1, 3, 3\) where the model has \(8, 1, 3, 3\), "
                    r".* and \d+ more"),
    ({"width": 8, "classes": 3}, r"shape mismatch: head.weight \(3, 32\) where the model has \(2, 32\), "
                                 r"head.bias \(3,\) where the model has \(2,\)$"),
    ({"width": 8, "in_chans": 3}, r"shape mismatch: features.0.0.weight \(8, 3, 3, 3\) where the model has "
                                  r"\(8, 1, 3, 3\) \(the file's features.0.0.weight takes 3 input channels, the "
                                  r"model built here 1: build it for 3 \(a timm model: params: "
                                  r"\{in_chans: 3\}\), give the dataset 3 channels where it has that "
                                  r"parameter, or pick 3 of the image's channels with preprocess: "
                                  r"\{channels: \[\.\.\.\]\}\)$"),
    ({"width": 8, "drop": ("head.bias",)}, r"missing: head.bias$"),
    ({"builder": "resnet18"}, r"missing: features.0.0.bias, .* and \d+ more; unexpected: bn1.bias, .* and \d+ more$"),
])
def test_weights_that_do_not_fit_are_refused_at_validation(tmp_path, kwargs, expected):
    path = _weights(tmp_path, **kwargs)
    with pytest.raises(SuiteError, match=rf"suite.yaml: models\[0\].weights: {path} does not fit model 'small_cnn' "
                                         rf"for dataset 'phantom_cxr' \(1 channel, 2 classes\): {expected}"):
        _load(tmp_path, _with_weights(path))


def test_weights_that_are_not_a_state_dict_are_refused_at_validation(tmp_path):
    import torch

    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    # the loader's own reason (faithbench.models.checkpoint.load_weights_file), named by the suite and key
    with pytest.raises(SuiteError, match=rf"suite.yaml: models\[0\].weights: {path}: .*expected a state.dict.* list"):
        _load(tmp_path, _with_weights(path))


@pytest.mark.parametrize("suffix", ["safetensors", "pt"])
def test_weights_holding_nan_or_inf_are_refused_at_validation(tmp_path, suffix):
    """A fuzzing review (clifuzz5 F5): a file of NaN weights validated; the run scored its NaN logits as
    accuracy 0.45 and blamed the test split for the undefined AUC."""
    import torch

    from faithbench.models import build_model
    from faithbench.store import save_tensors

    state = build_model("small_cnn", 1, 2, (32, 32), width=8).state_dict()
    state["features.1.0.weight"][0, 0, 0, 0] = float("inf")
    path = tmp_path / f"w.{suffix}"
    save_tensors(path, state) if suffix == "safetensors" else torch.save(state, path)
    with pytest.raises(SuiteError, match=rf"suite.yaml: models\[0\].weights: {path}: tensor 'features.1.0.weight' "
                                         rf"holds 1 of 1152 values that are NaN or infinite: expected finite weights "
                                         rf"\(a model of them outputs NaN\)$"):
        _load(tmp_path, _with_weights(path))


def test_nested_weights_are_refused_in_the_words_of_every_mismatch(tmp_path):
    """Review 164: a state dict nested under 'model' got the loader's wording ("does not fit the
    model built for this dataset") where every other mismatch names the model, the dataset, its
    channels and classes."""
    import torch

    from faithbench.models import build_model

    state = build_model("small_cnn", 1, 2, (32, 32), width=8).state_dict()
    path = tmp_path / "nested.pt"
    torch.save({"model": state, "epoch": 3}, path)
    with pytest.raises(SuiteError, match=rf"suite.yaml: models\[0\].weights: {path} does not fit model 'small_cnn' "
                                         rf"for dataset 'phantom_cxr' \(1 channel, 2 classes\): missing: .*; "
                                         rf"unexpected: epoch, model \(the tensors may be nested under model: "):
        _load(tmp_path, _with_weights(path))


def test_weights_of_your_own_builder_are_checked_too(tmp_path, monkeypatch):
    import sys

    from torch import nn

    from faithbench.store import save_tensors

    (tmp_path / "fb_own_net.py").write_text(
        "from torch import nn\n"
        "def build(in_chans, num_classes, width=4):\n"
        "    return nn.Sequential(nn.Conv2d(in_chans, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(width, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fb_own_net", raising=False)
    path = tmp_path / "own.safetensors"
    save_tensors(path, nn.Sequential(nn.Conv2d(1, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                     nn.Linear(6, 2)).state_dict())
    entry = "{name: 'fb_own_net:build', params: {width: %d}, weights: %s}"
    text = BASE.replace("{name: small_cnn, recipe: {epochs: 1}}", entry % (6, path))
    assert _load(tmp_path, text.replace("[gradcam, random]", "[random]")).models[0].params == {"width": 6}
    with pytest.raises(SuiteError, match=r"models\[0\].weights: .* does not fit model 'fb_own_net:build' .*"
                                         r"shape mismatch: 0.weight \(6, 1, 3, 3\) where the model has \(5, 1, 3, 3\)"):
        _load(tmp_path, text.replace("[gradcam, random]", "[random]").replace("width: 6", "width: 5"))
    sys.modules.pop("fb_own_net", None)


def test_seeds_over_a_model_not_trained_here_warn(tmp_path):
    """A held-out review: with seeds [0, 1] a weights file is the same checkpoint twice, and its
    deterministic values were pooled as 2n independent samples without a word."""
    fixed = _with_weights(_weights(tmp_path, width=8)).replace("name: t\n", "name: t\nseeds: [0, 1]\n")
    with pytest.warns(SuiteWarning, match=r"models\[0\] 'small_cnn' is not trained here \(no recipe\): every seed "
                                          r"of \[0, 1\] uses the same checkpoint"):
        _load(tmp_path, fixed)
    _load_silently(tmp_path, BASE.replace("name: t\n", "name: t\nseeds: [0, 1]\n"),  # trained per seed
                   _with_weights(_weights(tmp_path, width=8)))  # one seed


def test_data_randomization_over_a_model_without_recipe_warns(tmp_path):
    """A held-out review: the twin of a weights-file model was trained from a fresh init with the
    default recipe, unrelated to the file, and validate accepted it silently."""
    fixed = _with_weights(_weights(tmp_path, width=8)).replace("[pointing_game]", "[data_randomization]")
    with pytest.warns(SuiteWarning, match=r"models\[0\] 'small_cnn' has no recipe: data_randomization trains its "
                                          r"permuted-label twin from a fresh init with the default recipe"):
        _load(tmp_path, fixed)
    _load_silently(tmp_path, BASE.replace("[pointing_game]", "[data_randomization]"),  # a recipe
                   _with_weights(_weights(tmp_path, width=8)))  # no twin needed


def test_patches_that_do_not_tile_the_images_are_warned_of(tmp_path):
    """A diff review: patches cut by the border rank first and last more often (their means spread
    more), so the random control's morf_aopc was 0.145 against 0.108 for a random patch order."""
    text = BASE.replace("[pointing_game]", "[{name: morf_aopc, params: {patch: 8}}, irof, deletion_auc]")
    with pytest.warns(SuiteWarning, match=r"metrics\[0\] 'morf_aopc': patch 8 does not tile dataset 'phantom_cxr''s "
                                          r"images \(36 x 36\)") as caught:
        _load(tmp_path, text.replace("size: 32", "size: 36"))
    assert sorted(str(w.message).split("]")[0][-1] for w in caught if "does not tile" in str(w.message)) == ["0", "1"]
    _load_silently(tmp_path, text)  # 32 px: 8-px patches tile it; deletion_auc ranks pixels


def test_correlations_over_patches_that_do_not_tile_warn_that_cut_ones_are_left_out(tmp_path):
    """A held-out review: by the summed saliency of every patch, cut ones included, a constant map
    scored faithfulness_estimate 0.97 on 16 x 20; the cut patches are now left out, and said so."""
    text = BASE.replace("[pointing_game]", "[faithfulness_estimate, {name: sensitivity_n, params: {patch: 4}}]")
    with pytest.warns(SuiteWarning, match=r"metrics\[0\] 'faithfulness_estimate': patch 8 does not tile dataset "
                                          r"'phantom_cxr''s images \(36 x 36\): the patches cut by the border are "
                                          r"left out, 16 of 25 correlated") as caught:
        _load(tmp_path, text.replace("size: 32", "size: 36"))
    assert len([w for w in caught if "does not tile" in str(w.message)]) == 1  # 4 px tiles 36
    _load_silently(tmp_path, text)


def test_a_suite_without_its_control_is_warned_of(tmp_path):
    """A held-out review: with no random control the tables could not tell 'not tested' from 'not
    better', and validate said nothing."""
    with pytest.warns(SuiteWarning, match=r"explainers: no 'random' control, so the leaderboard tests no explainer"):
        _load(tmp_path, BASE.replace("[gradcam, random]", "[gradcam, saliency]"))
    _load_silently(tmp_path, BASE,  # with its control
                   BASE.replace("[gradcam, random]", "[gradcam]"),  # one explainer: nothing to rank
                   BASE.replace("[gradcam, random]", "[gradcam, saliency]") + "control: saliency\n")


def test_a_region_mask_no_dataset_has_is_warned_of(tmp_path):
    """A fuzzing review: regions: {masks: [hart]} passed validate without a word and the run dropped the block
    (skipped.csv only); the run still leaves such a mask out, as one that some datasets lack."""
    with pytest.warns(SuiteWarning, match=r"suite.yaml: regions.masks: no dataset has a mask 'hart' \(did you mean "
                                          r"'heart'\?\), so the run leaves it out; their masks: body, heart, "):
        _load(tmp_path, BASE.replace("name: t", "name: t\nregions: {masks: [heart, hart]}"))


@pytest.mark.parametrize("old, new, expected", [
    ("models: [{name: small_cnn, recipe: {epochs: 1}}]",
     "models: [{name: small_cnn, recipe: {epochs: 1}}, {name: small_cnn, alias: b, recipe: {epochs: 1}}]",
     r"suite.yaml: models\[1\] \('b'\) repeats models\[0\] \('small_cnn'\) with the same name and parameters: its "
     r"rows copy the other's; remove one or change a parameter$"),
    ("datasets: [{name: phantom_cxr, params: {size: 32, n: 8}}]",
     "datasets: [{name: phantom_cxr, params: {size: 32, n: 8}},\n"
     "           {name: phantom_cxr, alias: p, params: {n: 8, size: 32}}]",
     r"datasets\[1\] \('p'\) repeats datasets\[0\] \('phantom_cxr'\) .* and it counts as another dataset in "
     r"overall_ranks.csv;"),
    ("[gradcam, random]", "[gradcam, random, {name: gradcam, alias: g2}]", r"explainers\[2\] \('g2'\) repeats"),
    ("[pointing_game]", "[pointing_game, {name: pointing_game, alias: pg}]", r"metrics\[1\] \('pg'\) repeats"),
])
def test_an_entry_that_repeats_another_is_warned_of(tmp_path, old, new, expected):
    """A held-out review listed one model under three names (bit-identical checkpoints and values)
    without a word from validate; the statistics then counted it three times."""
    with pytest.warns(SuiteWarning, match=expected):
        _load(tmp_path, BASE.replace(old, new))
    changed = {"alias: b, recipe: {epochs: 1}": "alias: b, recipe: {epochs: 2}", "n: 8, size: 32": "n: 9, size: 32",
               "alias: g2}": "alias: g2, params: {relu: false}}", "alias: pg}": "alias: pg, params: {tolerance: 1}}"}
    for a, b in changed.items():
        new = new.replace(a, b)
    _load_silently(tmp_path, BASE.replace(old, new))  # one parameter differs: a variant, not a copy


def test_rise_and_cam_sizes_are_checked_against_the_largest_side():
    """A diff review: RISE's default grid 8 was refused on a 2-slice volume, where it runs (correlation 0.63
    with the box); grid and min_grid are one number for every axis."""
    from faithbench.registry import explainers

    assert explainers.get("rise")().check_input((1, 2, 32, 32)) is None
    assert explainers.get("gradcam")().check_input((1, 2, 32, 32)) is None
    assert "grid' = 33" in explainers.get("rise")(grid=33).check_input((1, 2, 32, 32))


def test_a_timm_weights_file_validates_without_torch_warnings(tmp_path):
    """Review random4 F2: validate's meta-device check of a timm resnet18 weights file printed torch's
    "copying from a non-meta parameter ... is a no-op" UserWarning once per tensor (122 of them)."""
    import os
    import subprocess
    import sys

    import timm
    import torch

    from faithbench.store import save_tensors

    torch.manual_seed(0)
    save_tensors(tmp_path / "r18.safetensors", timm.create_model("resnet18", num_classes=2, in_chans=1).state_dict())
    (tmp_path / "suite.yaml").write_text(BASE.replace(
        "{name: small_cnn, recipe: {epochs: 1}}",
        "{name: 'timm:resnet18', params: {in_chans: 1}, weights: r18.safetensors, preprocess: none}"))
    suite = str(tmp_path / "suite.yaml")
    code = f"from faithbench.cli import main; raise SystemExit(main(['validate', {suite!r}]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "default"})
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "no-op" not in proc.stderr, proc.stderr[:2000]
    assert "suite.yaml: ok — suite 't'" in proc.stdout


def test_an_unannotated_builder_parameter_takes_its_defaults_kind():
    """A plugins review: a builder's ``width=6`` given "a" failed inside the builder ("not all arguments converted
    during string formatting"); a parameter without an annotation is checked against its default's kind."""
    from faithbench.config_types import check_param_types

    def build(in_chans, num_classes, *, width=6, dropout=0.0, norm=True, act="relu", extra=None):
        return None

    for params, expected in (({"width": "a"}, "expected a number (the default is 6), got str 'a'"),
                             ({"dropout": "0.1"}, "expected a number (the default is 0.0), got str '0.1'")):
        with pytest.raises(SuiteError, match=rf"^models\[0\]\.params\.{next(iter(params))}: {re.escape(expected)} "
                                             r"\(annotate the parameter if it takes text\)$"):
            check_param_types("models[0]", build, params, SuiteError)
    # a diff review: kernel=3 given [3, 3], MONAI's act as [name, args], a flag given 1 were refused by the first
    # version; only text for a number is (the builder decides the rest)
    check_param_types("models[0]", build, {"width": [3, 3], "dropout": 1, "norm": 1, "act": ["prelu", {"init": 0.2}],
                                           "extra": [1]}, SuiteError)


@pytest.mark.parametrize("change, expected", [
    ({"description": "a\0b"}, r"description: .*expected no control character \(U\+0000 at position 2\)"),
    ({"description": "a\x1bb"}, r"description: .*expected no control character \(U\+001B at position 2\)"),
    ({"datasets": [{"name": "phantom_cxr", "models": ["small_cnn", "small_cnn"]}]},
     r"datasets\[0\]\.models: .*expected unique names, got \['small_cnn', 'small_cnn'\]"),
])
def test_suite_text_and_name_lists_a_fuzzing_review_found_unchecked_are_refused(change, expected):
    """A NUL in description went raw into index.html; a model named twice in a dataset's models: passed."""
    from faithbench.config import suite_from_dict

    base = {"name": "t", "datasets": ["phantom_cxr"], "models": [{"name": "small_cnn", "recipe": "default"}],
            "explainers": ["saliency"],
            "metrics": ["deletion_auc"]}
    with pytest.raises(SuiteError, match=expected):
        suite_from_dict({**base, **change})
    for text in ("two\nlines\tand a tab", "\u05e9\u05dc\u05d5\u05dd\u200f text", "soft\u00adhyphen"):  # RTL mark
        assert suite_from_dict({**base, "description": text}).description == text


def test_a_model_no_dataset_pairs_with_is_warned_of():
    """A fuzzing review: a model left out by every dataset's models: list was dropped from the run without a word."""
    from faithbench.config import suite_from_dict, validate_plugins

    suite = suite_from_dict({"name": "t", "datasets": [{"name": "phantom_cxr", "models": ["small_cnn"]}],
                             "models": [{"name": n, "recipe": "default"} for n in ("small_cnn", "vit_tiny")],
                             "explainers": ["saliency", "random"],
                             "metrics": ["deletion_auc"]})
    with pytest.warns(SuiteWarning, match=r"^s\.yaml: model 'vit_tiny' pairs with no dataset \(every dataset's "
                                          r"models: leaves it out\), so the run leaves it out$"):
        validate_plugins(suite, "s.yaml")


MIXED = """name: t
samples: 6
batch_size: 6
datasets:
  - {name: phantom_cxr, params: {size: 32, n: 8}, models: [m2]}
  - {name: phantom_organ3d, params: {size: 24, n: 8}, models: [m3]}
models:
  - {name: small_cnn, alias: m2, recipe: {epochs: 1}}
  - {name: small_cnn, alias: m3, params: {width: 4}, recipe: {epochs: 1}}
explainers: [saliency, random]
metrics: [relevance_mass]
regions: {masks: [heart, liver], grid: [1, 3]}
"""


def test_region_masks_and_a_grid_only_some_datasets_lack_are_warned_of(tmp_path):
    """A held-out review (regions5): docs/suites.md says a mask only some datasets lack is a warning; validate said
    nothing for heart (no organ phantom mask), liver (no chest phantom mask) and a 2-axis grid on a 3D dataset."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SuiteWarning)
        _load(tmp_path, MIXED)
    lines = sorted(str(w.message).split("/")[-1] for w in caught if issubclass(w.category, SuiteWarning))
    assert lines == [
        "suite.yaml: regions.grid: [1, 3] has 2 sizes, but dataset 'phantom_organ3d' is 3D, so the run leaves the "
        "grid out there",
        "suite.yaml: regions.masks: dataset 'phantom_cxr' has no mask 'liver', so the run leaves it out there; its "
        "masks: body, heart, lesion, lung_contralateral, lung_left, lung_lesion_side, lung_right, spine",
        "suite.yaml: regions.masks: dataset 'phantom_organ3d' has no mask 'heart', so the run leaves it out there; its "
        "masks: body, kidney_left, kidney_right, lesion, liver, spine, spleen"]
    _load_silently(tmp_path, MIXED.replace("[heart, liver], grid: [1, 3]", "[body, spine]"))  # both have them


def test_a_region_mask_empty_in_a_class_of_the_first_batch_is_warned_of(tmp_path):
    """A held-out review (regions5): `lesion` (empty on normal images) made every explainer, the random control
    included, "significant" in region_tests.csv; validate said nothing. phantom_cxr's first 8 test images hold
    both classes (the test below counts them)."""
    from faithbench.datasets import PhantomCXR

    ds = PhantomCXR("test", size=32, n=8)
    negatives = sum(int(ds[i].label) == 0 for i in range(8))
    assert 0 < negatives < 8
    text = BASE.replace("name: t", "name: t\nsamples: 8\nbatch_size: 8\nregions: {masks: [lesion, heart]}")
    with pytest.warns(SuiteWarning, match=re.escape(
            f"suite.yaml: regions.masks: mask 'lesion' of dataset 'phantom_cxr' is empty on every label-0 sample "
            f"({negatives}) of the run's first batch, so region_tests.csv gives it no between-class test")):
        _load(tmp_path, text)
    with warnings.catch_warnings():  # a normal image has a reference side: no warning
        warnings.simplefilter("error", SuiteWarning)
        _load(tmp_path, text.replace("[lesion, heart]", "[lung_lesion_side, heart]"))
    with warnings.catch_warnings():  # subset: positive explains one class: no class test, no warning
        warnings.simplefilter("error", SuiteWarning)
        _load(tmp_path, text + "subset: positive\n")
