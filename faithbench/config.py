"""Suite configuration: YAML -> a strict, validated :class:`Suite`.

Unknown keys, unknown plugin names and wrong parameter names or types are errors that name
the file and the key (``quick.yaml: explainers[2]: unknown explainer 'gradcm'; did you mean
'gradcam'?``). YAML is loaded with ``yaml.SafeLoader``. ``include: other.yaml`` (a path
relative to the including file, or a built-in suite name) merges another suite first; keys of
the including file win; a cycle of includes is an error. A relative ``weights:`` path of a model
is read relative to the file that writes it too (else to the working directory). YAML is read strictly
(:mod:`faithbench.config_yaml`): UTF-8 only, a key written twice is an error, and aliases may
not expand the suite beyond a small budget. Finding and reading suite files, ``include:`` and built-in
names: :mod:`faithbench.config_files`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, ValidationError, field_validator,
                      model_validator)

from faithbench.config_checks import (SuiteWarning, check_control, check_kwargs, first_line,
                                     check_suite_values, check_target, check_validation,
                                     check_weights, resolve_weights, unique_names)
from faithbench.config_messages import validation_message
from faithbench.config_types import check_param_types
from faithbench.config_files import (BUILTIN_DIR, SuiteError, builtin_suites, read_suite_file,
                                     resolve_suite_path, suite_folder)
from faithbench.configurable import Bool, Float, Int, ParameterError
from faithbench.datasets.paths import DataError, InputDataError
from faithbench.metric_checks import check_masks, check_metric_fit
from faithbench.region_checks import check_regions
from faithbench.model_checks import check_models, check_train_splits, warn_padding_baseline
from faithbench.models.checkpoint import ModelSpec
from faithbench.models.errors import CheckpointError
from faithbench.models.factory import (check_model_spec, is_external, module_callable, monai_class,
                                       parse_model_name)
from faithbench.names import check_file_names, check_folder_name, check_label, check_text
from faithbench.registry import RegistryError, datasets, explainers, metrics, models

__all__ = ["SuiteError", "SuiteWeightsError", "SuiteDataError", "SuiteWarning", "Suite", "load_suite",
           "suite_from_dict", "validate_plugins",
           "BUILTIN_DIR", "builtin_suites", "resolve_suite_path"]  # the last three: faithbench.config_files'


class SuiteWeightsError(SuiteError, CheckpointError):
    """A model's ``weights:`` file that the suite cannot use (not found, unsafe, not fitting the model): a
    :class:`SuiteError`, found by validation, and a :class:`~faithbench.models.errors.CheckpointError`, as
    docs/api.md has it (a held-out review: ``except CheckpointError`` caught none of them)."""


class SuiteDataError(SuiteError, InputDataError):
    """Data there but unusable (test sample 0: a truncated file, a mask not of its image's shape), found by validation:
    a :class:`SuiteError` and an ``InputDataError``, as docs/api.md has it (a review: the latter caught neither)."""


class PluginSpec(BaseModel):
    """``name`` or ``{name, alias?, params?}``; ``alias`` is the label in tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)  # '' (a review): a suite '' wrote reports/_, an alias '' meant no alias
    alias: str | None = Field(None, min_length=1)
    params: dict[str, Any] = {}
    _label = field_validator("name", "alias")(check_label)  # no NUL, newline, blank or padded label (a review)

    @property
    def label(self) -> str:
        return self.alias or self.name


class DatasetSpec(PluginSpec):
    """A dataset entry; ``models`` (labels) restricts which of the suite's models it pairs with
    (default: all), so a costly dataset variant can be checked on one model only.

    ``optional: true``: when the dataset's data cannot be had here (no data root, a file absent
    from it that cannot be downloaded, e.g. offline), the run skips the dataset, with the reason
    in ``skipped.csv``, instead of stopping with exit code 2. Wrong parameters are still errors.
    """

    models: list[str] | None = Field(None, min_length=1)  # []: nothing would run (a review: validate said ok)
    optional: Bool = False
    _unique = field_validator("models")(unique_names)  # a fuzzing review: [small_cnn, small_cnn] passed


class RegionSpec(BaseModel):
    """The suite's ``regions:`` block: region-based saliency (docs/statistics.md, "Region-based saliency").

    ``masks``: names of the dataset's masks used as regions, or ``all`` (every mask of the
    dataset); ``grid``: ``[rows, cols]`` (2D) or ``[depth, rows, cols]`` (3D) cells of a regular
    grid (``[1, 3]``: three vertical strips); at least one of the two. ``scores``: which per-region
    scores (``mean, sum, max, share``) are tested in ``region_tests.csv`` (all four are always in
    ``regions.csv``). ``postprocess``: applied to the raw saliency first (``relu`` by default, as
    for relevance mass). ``alpha``: the level of the Shapiro–Wilk/Levene checks and of the
    Bonferroni-adjusted significance flag.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    masks: list[str] | Literal["all"] = []
    grid: list[Int] | None = None
    scores: list[Literal["mean", "sum", "max", "share"]] = ["share"]
    postprocess: Literal["none", "abs", "relu"] = "relu"
    alpha: Float = Field(0.05, gt=0.0, lt=1.0)

    @field_validator("scores", mode="before")
    @classmethod
    def _one_score(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("grid")
    @classmethod
    def _check_grid(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (len(value) not in (2, 3) or any(v < 1 for v in value)):
            raise ValueError(f"expected [rows, cols] or [depth, rows, cols] of sizes >= 1, got {value}")
        return value

    _unique = field_validator("masks", "scores")(unique_names)

    @model_validator(mode="after")
    def _some_region(self) -> "RegionSpec":
        if not self.masks and self.grid is None:
            raise ValueError("expected 'masks' (mask names or 'all'), 'grid' ([rows, cols]), or both")
        if not self.scores:
            raise ValueError("expected at least one score in 'scores'")
        return self


class ClassTargets(BaseModel):
    """Explain named classes of a multi-label dataset: ``target: {classes: [nodule, cavity]}``.

    classes: class names (default: every class of the dataset); one explanation row per
        (sample, class).
    samples: which (sample, class) pairs: ``all`` (every sample for every class), ``positive``
        (only samples where the class is present; ``target: each_positive`` is this with every
        class) or ``one_vs_normal`` (samples where the class is the only finding, and normal
        samples with no finding: the one-vs-normal design of the retinal study).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: list[str] | None = Field(None, min_length=1)
    samples: Literal["all", "positive", "one_vs_normal"] = "all"
    _unique = field_validator("classes")(unique_names)  # a class twice: duplicate rows after the whole run


TargetMode = Literal["predicted", "label", "each_positive"]
# a string picks a mode, a mapping is ClassTargets (errors then name its keys, not both branches)
_TARGET_TAGS = ("target_mode", "target_classes")  # union branches: left out of error locations
Target = Annotated[Union[Annotated[TargetMode, Tag(_TARGET_TAGS[0])], Annotated[ClassTargets, Tag(_TARGET_TAGS[1])]],
                   Discriminator(lambda v: _TARGET_TAGS[1] if isinstance(v, (dict, ClassTargets)) else _TARGET_TAGS[0])]


def _coerce(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class Suite(BaseModel):
    """A validated suite: its keys as in a suite file (name, seeds, samples, datasets, models, explainers,
    metrics, ...: the Suites page). Build one with :func:`load_suite`: a YAML path, a built-in name or a
    dict of suite keys (``load_suite({"name": "mine", "datasets": [...], ...})``), which checks the plugin
    names, parameters and data too and raises a one-line :class:`SuiteError` naming the key ("did you mean");
    ``Suite(**keys)`` checks only the schema and raises pydantic's multi-line ``ValidationError``, and
    :func:`faithbench.run` validates such a suite's names when it runs it. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    _text = field_validator("description")(check_text)
    seeds: list[Int] = Field(default_factory=lambda: [0], min_length=1)
    samples: Int = Field(64, ge=1, description="test samples per dataset")
    batch_size: Int = Field(32, ge=1)
    target: Target = Field("predicted", description="predicted or label (single-label datasets); "
                           "each_positive or {classes, samples} (multi-label datasets)")
    subset: Literal["all", "positive"] = Field("all", description="explain all test samples, or only "
                                               "those with a positive (non-zero) label")
    datasets: list[DatasetSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    explainers: list[PluginSpec] = Field(min_length=1)
    metrics: list[PluginSpec] = Field(min_length=1)
    executor: Literal["local", "ray"] = "local"
    device: str = Field("auto", description="where models, explainers and metrics run: auto (cuda when "
                        "available), cpu, cuda or cuda:N; --device overrides it")
    control: str = Field("random", description="the explainer that p_vs_random and beats_random test against")
    reliability: Int = Field(8, ge=0, description="metric reliability (reliability.csv): the first N samples of "
                             "each group (at most its first batch) re-explained and re-scored under a minor and a "
                             "disruptive perturbation; 0: off")
    regions: RegionSpec | None = Field(None, description="region-based saliency (regions.csv, region_tests.csv)")
    _source: str = PrivateAttr("<suite>")  # the file it was read from, which the run's errors name
    _validated: Any = PrivateAttr(None)  # its model_dump() when validation last warned of it

    @property
    def source(self) -> str:
        """The suite file as errors name it (``<suite>`` for a mapping)."""
        return self._source

    @property
    def warned(self) -> bool:
        """Whether validation (:func:`load_suite`) warned of this suite as it is now, unchanged since."""
        try:
            return self._validated is not None and bool(self._validated == self.model_dump())
        except Exception:  # noqa: BLE001 - a parameter that does not compare (an array): not the same
            return False

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:  # ' ' or '/' wrote reports/_ (a diff review)
        if name and not any(ch.isalnum() for ch in name):
            raise ValueError(f"expected a name with a letter or digit (it names the run's folder), got {name!r}")
        return check_folder_name(check_label(name))

    @field_validator("datasets", "explainers", "metrics", "models", mode="before")
    @classmethod
    def _names_to_dicts(cls, value: Any) -> Any:
        return [_coerce(v) for v in value] if isinstance(value, list) else value


def _model_names() -> set[str]:
    """The class names of every pydantic model, which name union branches in an error's path (a fuzzing
    review: any capitalised part was taken for one, so ``Samples: 3`` was located at ``''``)."""
    names, todo = set(), [BaseModel]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:  # union branches (literal['auto','none'], PreprocessSpec) are not keys: left out
        branch = isinstance(part, str) and (part.startswith(("literal[", "list[")) or part in _model_names())
        if part in _TARGET_TAGS or branch:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_plugins(suite: Suite, source: str) -> None:
    """Resolve every plugin name and check every parameter, without running anything; then
    what needs the plugins built (:mod:`faithbench.config_checks`; warns :class:`SuiteWarning`)."""
    check_suite_values(suite, source, SuiteError)  # a duplicate entry point fails where it is named, only there
    multilabel: list[str] = []  # labels of the multi-label datasets
    built: dict[str, Any] = {}  # label -> test split
    plugins: dict[str, list[Any]] = {"explainers": [], "metrics": []}
    for i, spec in enumerate(suite.datasets):
        where = f"{source}: datasets[{i}]"
        try:
            cls = datasets.get(spec.name)
        except RegistryError as exc:
            raise SuiteError(f"{where}: {exc}") from None
        check_kwargs(where, cls, spec.params, SuiteError)
        check_param_types(where, cls, spec.params, SuiteError)
        try:
            dataset = cls(split="test", **spec.params)
        except (TypeError, ValueError) as exc:
            if spec.optional and isinstance(exc, DataError):  # the run skips it too (runner.run.preflight)
                warnings.warn(f"{where} {spec.label!r} is optional and its data is not here, so the run skips it: "
                              f"{first_line(exc)}", SuiteWarning, stacklevel=2)
                continue
            raise SuiteError(f"{where}.params: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a plugin's own error (its files: an OSError), named as explainers'
            raise SuiteError(f"{where}: dataset {spec.name!r} ({datasets.origin(spec.name)}) cannot be built: "
                             f"{type(exc).__name__}: {first_line(exc)}") from None
        built[spec.label] = dataset
        check_target(suite.target, dataset, f"{source}: target", f"datasets[{i}] {spec.label!r}", SuiteError)
        if getattr(dataset, "multilabel", False):
            if suite.regions is not None:  # the region tests compare label 0 with the others, a row per image
                raise SuiteError(f"{source}: regions: the region-based tests compare normal and abnormal images, "
                                 f"one map per image; datasets[{i}] {spec.label!r} is multi-label (one map per "
                                 f"class): run the regions block on single-label datasets")
            multilabel.append(spec.label)
        elif suite.subset == "positive" and len(dataset.classes) > 2:  # a review: a real class dropped without a word
            warnings.warn(f"{where} {spec.label!r}: subset: positive explains the samples whose label is not 0, so its "
                          f"class 0 {dataset.classes[0]!r} (of {len(dataset.classes)}) is left out as if normal",
                          SuiteWarning, stacklevel=2)
    for i, mspec in enumerate(suite.models):
        where = f"{source}: models[{i}]"
        if is_external(mspec.name):  # timm:, torchvision:, monai:, hf-hub:, local-dir:, pkg.mod:fn
            try:
                check_model_spec(mspec)
            except ValueError as exc:
                raise SuiteError(f"{where}: {exc}") from None
            if (parsed := parse_model_name(mspec.name)).source in ("module", "monai"):  # defaults' kinds too (reviews)
                builder = module_callable if parsed.source == "module" else monai_class
                check_param_types(where, builder(parsed.target), mspec.params, SuiteError)
        else:
            try:
                builder = models.get(mspec.name)
            except RegistryError as exc:
                raise SuiteError(f"{where}: {exc}") from None
            check_kwargs(where, builder, mspec.params, SuiteError)
            check_param_types(where, builder, mspec.params, SuiteError)
    for kind, registry, specs in (("explainers", explainers, suite.explainers),
                                  ("metrics", metrics, suite.metrics)):
        for i, spec in enumerate(specs):
            where = f"{source}: {kind}[{i}]"
            try:
                cls = registry.get(spec.name)
            except RegistryError as exc:
                raise SuiteError(f"{where}: {exc}") from None
            if kind == "explainers" and "seed" in spec.params:  # a review: the runner's seed= too, a TypeError per cell
                valid = ", ".join(sorted(k for k in getattr(cls, "defaults", {}) if k != "seed")) or "none"
                raise SuiteError(f"{where}.params: {spec.name}: parameter 'seed' is not an explainer's own: "
                                 f"each cell's seed comes from the suite's seeds: (a list); valid parameters: {valid}")
            try:
                plugin = cls(**spec.params)
            except ParameterError as exc:
                raise SuiteError(f"{where}.params: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - a plugin's own error: name it (a review: a raw exit 1)
                raise SuiteError(f"{where}: {kind[:-1]} {spec.name!r} ({registry.origin(spec.name)}) cannot be built: "
                                 f"{type(exc).__name__}: {first_line(exc)}") from None
            plugins[kind].append(plugin)
            if kind == "explainers" and multilabel and getattr(plugin, "score", None) == "softmax":
                # a softmax couples independent sigmoid classes: hiding one finding raises the other
                raise SuiteError(f"{where}.params: score 'softmax' couples the classes of a multi-label model "
                                 f"(dataset {multilabel[0]!r}); set score: sigmoid (or logit)")
    model_labels = [m.label for m in suite.models]
    for i, dspec in enumerate(suite.datasets):
        for label in dspec.models or []:
            if label not in model_labels:
                raise SuiteError(f"{source}: datasets[{i}].models: unknown model label {label!r}; "
                                 f"the suite's models are: {', '.join(model_labels)}")
    paired = {label for d in suite.datasets for label in (d.models or model_labels)}
    for label in (m for m in model_labels if m not in paired):  # a review: dropped without a word
        warnings.warn(f"{source}: model {label!r} pairs with no dataset (every dataset's models: leaves it out), so "
                      "the run leaves it out", SuiteWarning, stacklevel=2)
    for kind, specs in (("datasets", suite.datasets), ("explainers", suite.explainers),
                        ("metrics", suite.metrics), ("models", suite.models)):
        labels = [s.label for s in specs]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise SuiteError(f"{source}: {kind}: duplicate label {dup[0]!r}; give one entry an 'alias'")
    check_file_names(suite, source, SuiteError)
    check_models(suite, source, built, plugins["explainers"], SuiteError)
    warn_padding_baseline(suite, source, built, plugins["explainers"])
    check_weights(suite, source, built, SuiteWeightsError)
    masks = check_masks(suite, source, built, plugins["metrics"], SuiteDataError)  # per dataset, read once
    check_regions(suite, source, built, masks, SuiteError)
    check_validation(suite, source, built, plugins["metrics"], SuiteError)
    check_train_splits(suite, source, built, SuiteError)  # one class in a train split, where labels are cheap
    check_metric_fit(suite, source, built, plugins["metrics"], SuiteError, masks)  # aliases; limits of data, model


def suite_from_dict(data: dict[str, Any], source: str = "<suite>") -> Suite:
    """Validate a mapping of suite keys; relative ``weights:`` paths are read from the working directory."""
    ensure_plugins_loaded()
    if "models" in data:
        data = {**data, "models": resolve_weights(data["models"], Path.cwd(), source, SuiteWeightsError)}
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(f"{source}: {validation_message(exc.errors(), _loc, Suite)}") from None
    suite._source = source
    validate_plugins(suite, source)
    check_control(suite, source, SuiteError)
    suite._validated = suite.model_dump()
    return suite


def load_suite(suite: str | Path | dict[str, Any]) -> Suite:
    """Load, merge includes, validate. ``suite``: a YAML path, a built-in suite name, or a
    mapping of suite keys (as in a YAML file; an ``include:`` is resolved like a path's)."""
    origins: dict[str, Path] = {}  # the file that wrote each key: relative weights are read from its folder
    if isinstance(suite, dict):
        data, source = dict(suite), "<suite>"
        include = data.pop("include", None)
        if include is not None:
            try:
                included = resolve_suite_path(include)
            except SuiteError as exc:
                raise SuiteError(f"{source}: include: {exc}") from None
            data = {**read_suite_file(included, origins=origins), **data}
            origins = {k: v for k, v in origins.items() if k not in suite}
    else:
        path = resolve_suite_path(suite)
        data, source = read_suite_file(path, origins=origins), _shown(path)
    if "models" in origins:  # else a mapping's own models: suite_from_dict reads them from the working directory
        where = origins["models"]
        data["models"] = resolve_weights(data["models"], suite_folder(where), _shown(where),
                                         SuiteWeightsError)
    return suite_from_dict(data, source=source)


def _shown(path: Path) -> str:
    """A suite file as errors name it: a built-in by its file name, a user's file as given."""
    return path.name if path.parent == BUILTIN_DIR else str(path)


def ensure_plugins_loaded() -> None:
    """Import the built-in plugins so they register themselves."""
    import faithbench.datasets  # noqa: F401
    import faithbench.explainers  # noqa: F401
    import faithbench.metrics  # noqa: F401
    import faithbench.models  # noqa: F401
