"""CITATION.cff is valid Citation File Format and names this version; the reporting guide of docs/outputs.md
names only manifest fields a run writes (a held-out review: no "how to cite / what to report" guidance)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_citation_file_names_this_version_and_no_invented_doi():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["version"] == version and citation["authors"] == [{"name": "the faithbench developers"}]
    assert {"message", "title", "license"} <= set(citation) and "doi" not in citation


def test_the_reporting_guide_names_manifest_fields_the_runner_writes():
    page = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    guide = page.split("## Reporting results in a paper", 1)[1]
    run = (ROOT / "faithbench" / "runner" / "run.py").read_text(encoding="utf-8")
    fields = {"git", "versions", "device", "torch_threads", "suite", "seeds", "samples_per_dataset", "control",
              "reliability", "plugins", "plugin_packages"}
    assert fields <= set(re.findall(r"`(\w+)`", guide))
    assert all(f'"{field}"' in run for field in fields), [f for f in fields if f'"{f}"' not in run]
