import re
import textwrap

import pytest

from faithbench.config import SuiteError, load_suite


def write(tmp_path, text, name="suite.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


BASE = """
name: t
datasets: [phantom_cxr]
models: [{name: resnet18, recipe: {epochs: 1}}]
explainers: [gradcam, random]
metrics: [pointing_game]
"""


def test_builtin_quick_loads():
    suite = load_suite("quick")
    assert suite.name == "quick" and "random" in [e.name for e in suite.explainers]


def test_valid_suite_and_defaults(tmp_path):
    suite = load_suite(write(tmp_path, BASE))
    assert suite.seeds == [0] and suite.target == "predicted"
    assert suite.models[0].recipe.epochs == 1 and suite.models[0].recipe.lr == 1e-3


@pytest.mark.parametrize("text, expected", [
    # helper 132: a typo of an optional key got no suggestion (only those of required keys did)
    (BASE + "sample: 3\n", r"suite.yaml: sample: unknown key 'sample'; did you mean 'samples'\?$"),
    (BASE + "batchsize: 3\n", r"suite.yaml: batchsize: unknown key 'batchsize'; did you mean 'batch_size'\?$"),
    (BASE.replace("{epochs: 1}", "{epochs: 1, LR: 0.1}"), r"unknown key 'LR'; did you mean 'lr'\?$"),
    (BASE.replace("[pointing_game]", "[{name: pointing_game, alais: pg}]"),
     r"suite.yaml: metrics\[0\].alais: unknown key 'alais'; did you mean 'alias'\?$"),
    (BASE.replace("name: t\n", "name: t\nregions: {mask: [lesion]}\n"),
     r"suite.yaml: regions.mask: unknown key 'mask'; did you mean 'masks'\?$"),
    (BASE.replace("name: t\n", "name: t\nregions: {masks: 5}\n"),  # was regions.masks.list[str]: ...
     r"suite.yaml: regions.masks: Input should be a valid list, or 'all'$"),
    (BASE.replace("[gradcam, random]", "[GradCAM, random]"),
     r"explainers\[0\]: unknown explainer 'GradCAM'; did you mean 'gradcam',"),
    (BASE.replace("[gradcam, random]", "[gradcm, random]"),
     r"suite.yaml: explainers\[0\]: unknown explainer 'gradcm'; did you mean 'gradcam'"),
    (BASE.replace("[pointing_game]", "[{name: pointing_game, params: {tolerence: 2}}]"),
     r"metrics\[0\].params: pointing_game: unknown parameter 'tolerence'"),
    (BASE.replace("[pointing_game]", "[{name: pointing_game, params: {tolerance: 'two'}}]"),
     r"metrics\[0\].params: pointing_game: parameter 'tolerance' expects int"),
    (BASE.replace("[phantom_cxr]", "[{name: phantom_cxr, params: {shortcutt: 0.9}}]"),
     r"datasets\[0\].params: unknown parameter 'shortcutt'"),
    (BASE.replace("[phantom_cxr]", "[{name: phantom_cxr, params: {shortcut: 2.0}}]"),
     r"datasets\[0\].params: phantom_cxr: expected shortcut in \[0, 1\]"),
    (BASE.replace("epochs: 1", "epochs: 0"), r"models\[0\].recipe.epochs: Input should be greater"),
    (BASE.replace("epochs: 1", "epoch: 1"), r"models\[0\].recipe.epoch: unknown key 'epoch'; did you mean 'epochs'"),
    (BASE.replace("recipe:", "reciepe:"), r"models\[0\].reciepe: unknown key 'reciepe'; did you mean 'recipe'\?$"),
    (BASE.replace("name: resnet18", "name: resnet81"), r"models\[0\]: unknown model 'resnet81'; did you mean"),
    # a fuzzing review: a bare unknown name was told it lacked a weights source
    (BASE.replace("[{name: resnet18, recipe: {epochs: 1}}]", "[smal_cnn]"),
     r"suite.yaml: models\[0\]: unknown model 'smal_cnn'; did you mean 'small_cnn'"),
    (BASE.replace("name: t\n", ""), r"suite.yaml: name: required key is missing"),
    ("name: [unclosed\n", r"suite.yaml: line \d+, column \d+: malformed YAML: expected"),
    ("- just\n- a list\n", r"expected a mapping of suite keys"),
    (BASE.replace("[gradcam, random]", "[gradcam, gradcam]"), r"explainers: duplicate label 'gradcam'"),
])
def test_errors_name_file_and_key(tmp_path, text, expected):
    with pytest.raises(SuiteError, match=expected):
        load_suite(write(tmp_path, text))


@pytest.mark.parametrize("old, new, key", [
    ("name: t", "name: ''", "name"),  # was accepted: reports/_
    ("[phantom_cxr]", "[{name: phantom_cxr, alias: ''}]", r"datasets\[0\].alias"),  # was: silently no alias
    ("{name: resnet18,", "{name: resnet18, alias: '',", r"models\[0\].alias"),
    ("{name: resnet18,", "{name: '',", r"models\[0\].name"),
    ("[gradcam, random]", "[{name: gradcam, alias: ''}, random]", r"explainers\[0\].alias"),
    ("[pointing_game]", "[{name: pointing_game, alias: ''}]", r"metrics\[0\].alias"),
    ("[pointing_game]", "['']", r"metrics\[0\].name"),
])
def test_an_empty_name_or_alias_is_refused(tmp_path, old, new, key):
    """A fuzzing review (F5): '' was accepted as a suite name and meant "no alias" in an entry."""
    with pytest.raises(SuiteError, match=rf"^{tmp_path / 'suite.yaml'}: {key}: String should have at least 1 "
                                         r"character$"):
        load_suite(write(tmp_path, BASE.replace(old, new)))


@pytest.mark.parametrize("name", ["' '", '"\\t"', "'/'"])  # YAML: a space, a tab, a slash
def test_a_suite_name_without_a_letter_or_digit_is_refused(tmp_path, name):
    """Diff review 15: ' ', a tab or '/' passed the empty-name check and wrote reports/_."""
    with pytest.raises(SuiteError, match=r"name: expected a name with a letter or digit \(it names the run's folder\)"):
        load_suite(write(tmp_path, BASE.replace("name: t\n", f"name: {name}\n")))
    assert load_suite(write(tmp_path, BASE.replace("name: t\n", "name: 'süïte 名'\n"))).name == "süïte 名"


def test_include_merges_and_overrides(tmp_path):
    write(tmp_path, BASE, name="base.yaml")
    child = write(tmp_path, "include: base.yaml\nname: child\nseeds: [0, 1]\n", name="child.yaml")
    suite = load_suite(child)
    assert suite.name == "child" and suite.seeds == [0, 1] and suite.explainers[0].name == "gradcam"


def test_missing_suite_file(tmp_path):
    with pytest.raises(SuiteError, match="no such suite file, and not a built-in suite"):
        load_suite("does/not/exist.yaml")
    # a CLI review: '' read as the working directory; include: quick.yaml had no hint to drop the suffix
    with pytest.raises(SuiteError, match=r"^'': an empty name, not a suite file, and not a built-in suite"):
        load_suite("")
    with pytest.raises(SuiteError, match=r"include: quick.yaml: no such suite file, .*; the built-in is 'quick', "
                                         r"without the suffix; built-ins: "):
        load_suite(write(tmp_path, "include: quick.yaml\nname: mine\n"))


def test_yaml_is_loaded_safely(tmp_path):
    evil = BASE + "description: !!python/object/apply:os.system ['touch pwned']\n"
    with pytest.raises(SuiteError, match="malformed YAML"):
        load_suite(write(tmp_path, evil))


def test_dataset_models_restrict_the_plan(tmp_path):
    from faithbench.runner.plan import plan

    text = BASE.replace("models: [{name: resnet18, recipe: {epochs: 1}}]",
                        "models: [{name: resnet18, recipe: {epochs: 1}}, {name: small_cnn, recipe: {epochs: 1}}]")
    text = text.replace("datasets: [phantom_cxr]",
                        "datasets: [phantom_cxr, {name: phantom_cxr, alias: shortcut, params: {shortcut: 0.9}, "
                        "models: [small_cnn]}]")
    groups = plan(load_suite(write(tmp_path, text)))
    assert [(g.dataset.label, g.model.label) for g in groups] == [
        ("phantom_cxr", "resnet18"), ("phantom_cxr", "small_cnn"), ("shortcut", "small_cnn")]
    with pytest.raises(SuiteError, match=r"datasets\[1\].models: unknown model label 'small'"):
        load_suite(write(tmp_path, text.replace("models: [small_cnn]}", "models: [small]}")))


@pytest.mark.parametrize("seeds, expected", [
    ("[0, 0]", r"suite.yaml: seeds: expected distinct integers from 0 to 2\*\*32 - 1 .*got \[0, 0\]: 0 is repeated"),
    ("[1, 2, 1, 2]", r"seeds: expected distinct integers from 0 to 2\*\*32 - 1 .*got \[1, 2, 1, 2\]: 1 is repeated"),
    ("[-1]", r"suite.yaml: seeds: expected distinct integers from 0 to 2\*\*32 - 1 .*got \[-1\]: -1 is negative"),
    # a held-out review: 0 and 2**32 gave byte-identical checkpoints; 2**63 failed every cell
    ("[0, 4294967296]", r"4294967296 is 2\*\*32 or more \(torch's generator keeps 32 bits: it would repeat seed 0\)"),
    ("[99999999999999999999]", r"seeds: .* 99999999999999999999 is 2\*\*32 or more"),
])
def test_seeds_must_be_distinct_and_not_negative(tmp_path, seeds, expected):
    with pytest.raises(SuiteError, match=expected):
        load_suite(write(tmp_path, BASE + f"seeds: {seeds}\n"))
    assert load_suite(write(tmp_path, BASE + "seeds: [2, 0, 1]\n")).seeds == [2, 0, 1]


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:-1", "meta", "CUDA", ""])
def test_device_syntax_is_checked_at_validation(tmp_path, device):
    with pytest.raises(SuiteError, match=r"suite.yaml: device: expected one of auto, cpu, cuda, cuda:N, mps, "
                                         rf"got '{device}'"):
        load_suite(write(tmp_path, BASE + f"device: '{device}'\n"))


@pytest.mark.parametrize("device, message", [("cuda:1000", "expected cuda:N with N in [0, 127]"),
                                             ("cpu:300", "expected cpu or cpu:0")])
def test_a_device_index_torch_would_wrap_is_refused_at_validation(tmp_path, device, message):
    with pytest.raises(SuiteError, match=rf"suite.yaml: device: {re.escape(message)} .*, got '{device}'$"):
        load_suite(write(tmp_path, BASE + f"device: '{device}'\n"))


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "cuda:127", "cpu:0", "mps", " cuda:0 "])
def test_device_meant_for_another_machine_validates(tmp_path, device):
    # validation checks the name only: a suite meant for a GPU machine validates on a laptop
    assert load_suite(write(tmp_path, BASE + f"device: '{device}'\n")).device == device
