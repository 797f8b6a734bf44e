"""Suite configuration: YAML -> a strict, validated :class:`Suite`.

Unknown keys, unknown plugin names and wrong parameter names or types are errors that name
the file and the key (``quick.yaml: explainers[2]: unknown explainer 'gradcm'; did you mean
'gradcam'?``). YAML is loaded with ``yaml.safe_load``. ``include: other.yaml`` (a path
relative to the including file, or a built-in suite name) merges another suite first; keys of
the including file win.
"""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from faithbench.configurable import ParameterError
from faithbench.datasets.paths import DataError
from faithbench.models.checkpoint import ModelSpec
from faithbench.models.factory import check_model_spec, is_external
from faithbench.registry import RegistryError, datasets, explainers, metrics, models

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


class SuiteError(ValueError):
    """A suite that cannot be run; the message names the file and the key."""


class PluginSpec(BaseModel):
    """``name`` or ``{name, alias?, params?}``; ``alias`` is the label in tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    alias: str | None = None
    params: dict[str, Any] = {}

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

    models: list[str] | None = None
    optional: bool = False


class RegionSpec(BaseModel):
    """The suite's ``regions:`` block: region-based saliency (README, "Region-based saliency").

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
    grid: list[int] | None = None
    scores: list[Literal["mean", "sum", "max", "share"]] = ["share"]
    postprocess: Literal["none", "abs", "relu"] = "relu"
    alpha: float = Field(0.05, gt=0.0, lt=1.0)

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

    @field_validator("masks", "scores")
    @classmethod
    def _unique(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(set(value)) != len(value):
                raise ValueError(f"expected unique names, got {value}")
        return value

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


TargetMode = Literal["predicted", "label", "each_positive"]
# a string picks a mode, a mapping is ClassTargets (errors then name its keys, not both branches)
_TARGET_TAGS = ("target_mode", "target_classes")  # union branches: left out of error locations
Target = Annotated[Union[Annotated[TargetMode, Tag(_TARGET_TAGS[0])], Annotated[ClassTargets, Tag(_TARGET_TAGS[1])]],
                   Discriminator(lambda v: _TARGET_TAGS[1] if isinstance(v, (dict, ClassTargets)) else _TARGET_TAGS[0])]


def _coerce(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    samples: int = Field(64, ge=1, description="test samples per dataset")
    batch_size: int = Field(32, ge=1)
    target: Target = Field("predicted", description="predicted or label (single-label datasets); "
                           "each_positive or {classes, samples} (multi-label datasets)")
    subset: Literal["all", "positive"] = Field("all", description="explain all test samples, or only "
                                               "those with a positive (non-zero) label")
    datasets: list[DatasetSpec] = Field(min_length=1)
    models: list[ModelSpec] = Field(min_length=1)
    explainers: list[PluginSpec] = Field(min_length=1)
    metrics: list[PluginSpec] = Field(min_length=1)
    executor: Literal["local", "ray"] = "local"
    control: str = "random"
    regions: RegionSpec | None = Field(None, description="region-based saliency (regions.csv, region_tests.csv)")

    @field_validator("datasets", "explainers", "metrics", "models", mode="before")
    @classmethod
    def _names_to_dicts(cls, value: Any) -> Any:
        return [_coerce(v) for v in value] if isinstance(value, list) else value


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part in _TARGET_TAGS:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read suite ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuiteError(f"{path}:{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: expected a mapping of suite keys, got {type(data).__name__}")
    include = data.pop("include", None)
    if include is not None:
        if not isinstance(include, str):
            raise SuiteError(f"{path}: include: expected a path or suite name, got {include!r}")
        inc = resolve_suite_path(include, relative_to=path.parent)
        if inc in seen:
            raise SuiteError(f"{path}: include: circular include of {inc}")
        data = {**_read_yaml(inc, seen + (path,)), **data}
    return data


def resolve_suite_path(suite: str | Path, relative_to: Path | None = None) -> Path:
    """A YAML path, or the name of a built-in suite in ``benchmarks/``."""
    candidate = Path(suite)
    if relative_to is not None and not candidate.is_absolute():
        rel = relative_to / candidate
        if rel.exists():
            return rel
    if candidate.exists():
        return candidate
    builtin = BUILTIN_DIR / f"{suite}.yaml"
    if builtin.exists():
        return builtin
    names = ", ".join(builtin_suites()) or "(none)"
    raise SuiteError(f"{suite}: no such suite file, and not a built-in suite (built-ins: {names})")


def builtin_suites() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")) if BUILTIN_DIR.exists() else []


def _check_kwargs(where: str, target: Any, params: dict[str, Any]) -> None:
    """Check keyword names against a callable's signature (for datasets and models)."""
    sig = inspect.signature(target)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    named = [n for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY or
             (p.kind is p.POSITIONAL_OR_KEYWORD and n not in ("self", "split"))]
    for key in params:
        if key not in named and not accepts_any:
            raise SuiteError(f"{where}.params: unknown parameter {key!r}; valid parameters: {', '.join(named)}")


def validate_plugins(suite: Suite, source: str) -> None:
    """Resolve every plugin name and check every parameter, without running anything."""
    multilabel: list[str] = []  # labels of the multi-label datasets
    for i, spec in enumerate(suite.datasets):
        where = f"{source}: datasets[{i}]"
        try:
            cls = datasets.get(spec.name)
        except RegistryError as exc:
            raise SuiteError(f"{where}: {exc}") from None
        _check_kwargs(where, cls, spec.params)
        try:
            dataset = cls(split="test", **spec.params)
        except (TypeError, ValueError) as exc:
            if spec.optional and isinstance(exc, DataError):
                continue  # the run skips it and says why (runner.run.preflight)
            raise SuiteError(f"{where}.params: {exc}") from None
        _check_target(suite.target, dataset, f"{source}: target", f"datasets[{i}] {spec.label!r}")
        if getattr(dataset, "multilabel", False):
            if suite.regions is not None:  # the region tests compare label 0 with the others, a row per image
                raise SuiteError(f"{source}: regions: the region-based tests compare normal and abnormal images, "
                                 f"one map per image; datasets[{i}] {spec.label!r} is multi-label (one map per "
                                 f"class): run the regions block on single-label datasets")
            multilabel.append(spec.label)
    for i, mspec in enumerate(suite.models):
        where = f"{source}: models[{i}]"
        if is_external(mspec.name):  # timm:, torchvision:, monai:, hf-hub:, local-dir:, pkg.mod:fn
            try:
                check_model_spec(mspec)
            except ValueError as exc:
                raise SuiteError(f"{where}: {exc}") from None
        else:
            try:
                builder = models.get(mspec.name)
            except RegistryError as exc:
                raise SuiteError(f"{where}: {exc}") from None
            _check_kwargs(where, builder, mspec.params)
        if mspec.weights is not None and not Path(mspec.weights).expanduser().exists():
            raise SuiteError(f"{where}.weights: file not found: {mspec.weights}")
    for kind, registry, specs in (("explainers", explainers, suite.explainers),
                                  ("metrics", metrics, suite.metrics)):
        for i, spec in enumerate(specs):
            where = f"{source}: {kind}[{i}]"
            try:
                cls = registry.get(spec.name)
            except RegistryError as exc:
                raise SuiteError(f"{where}: {exc}") from None
            try:
                plugin = cls(**spec.params)
            except ParameterError as exc:
                raise SuiteError(f"{where}.params: {exc}") from None
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
    for kind, specs in (("datasets", suite.datasets), ("explainers", suite.explainers),
                        ("metrics", suite.metrics), ("models", suite.models)):
        labels = [s.label for s in specs]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise SuiteError(f"{source}: {kind}: duplicate label {dup[0]!r}; give one entry an 'alias'")


def _check_target(target: Any, dataset: Any, where: str, which: str) -> None:
    """Class targets need a multi-label dataset with those classes; a multi-label dataset needs
    class targets (one predicted or true class per sample does not describe it)."""
    multilabel = bool(getattr(dataset, "multilabel", False))
    classes = tuple(getattr(dataset, "classes", ()))
    if target in ("predicted", "label"):
        if multilabel:
            raise SuiteError(f"{where}: {target!r} explains one class per sample, but {which} is multi-label "
                             f"(classes: {', '.join(classes)}); use each_positive or {{classes: [...]}}")
        return
    if not multilabel:
        raise SuiteError(f"{where}: {'each_positive' if target == 'each_positive' else 'classes'} explains the "
                         f"classes of multi-label datasets, but {which} is single-label; use predicted or label")
    for k, name in enumerate(getattr(target, "classes", None) or []):
        if name not in classes:
            close = difflib.get_close_matches(name, classes, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SuiteError(f"{where}.classes[{k}]: unknown class {name!r} of {which}{hint} "
                             f"(classes: {', '.join(classes)})")


def suite_from_dict(data: dict[str, Any], source: str = "<suite>") -> Suite:
    ensure_plugins_loaded()
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _loc(tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {str(err['loc'][-1])!r}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        raise SuiteError(f"{source}: {loc}: {msg}") from None
    validate_plugins(suite, source)
    return suite


def load_suite(suite: str | Path) -> Suite:
    """Load, merge includes, validate. ``suite``: a YAML path or a built-in suite name."""
    path = resolve_suite_path(suite)
    return suite_from_dict(_read_yaml(path), source=path.name if path.parent == BUILTIN_DIR else str(path))


def ensure_plugins_loaded() -> None:
    """Import the built-in plugins so they register themselves."""
    import faithbench.datasets  # noqa: F401
    import faithbench.explainers  # noqa: F401
    import faithbench.metrics  # noqa: F401
    import faithbench.models  # noqa: F401
