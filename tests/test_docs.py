"""Issue 26: the README is a short front door and the docs/ pages it links name only what exists.

Every relative link of README.md and docs/*.md reaches a file (and a heading, for ``#anchor``s), every
``corerl.x.y`` name they cite imports, and every repository path they cite is in the checkout, so a
moved module or a renamed heading fails here, naming the page and the reference.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Paths the docs cite that exist only elsewhere than in the checkout, with where they exist.
FILE_SUFFIXES = {"git", "zip", "whl", "md", "py", "yaml"}
NOT_IN_CHECKOUT = {"corerl/_data": "inside the wheel: data/ mapped there by pyproject.toml"}


def _prose(page: Path) -> str:
    """The page without its fenced code blocks (commands there may name output files yet to exist)."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", _prose(page), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _relative_links(page: Path) -> list[str]:
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", page.read_text()) if not re.match(r"[a-z]+:", t)]


def test_the_readme_is_a_front_door_that_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150, "README.md is over 150 lines: move detail into docs/"
    assert "make run " in readme and "make test " in readme, "README.md lost the two commands"
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _relative_links(ROOT / "README.md")}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(page: Path) -> None:
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        assert destination.exists(), f"{page.relative_to(ROOT)}: link {target} reaches no file"
        if anchor and destination.suffix == ".md":
            assert anchor in _anchors(destination), (
                f"{page.relative_to(ROOT)}: link {target}: no such heading"
            )


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for length in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:length]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[length:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_corerl_name_the_docs_cite_imports(page: Path) -> None:
    # Not after a slash, dot or hyphen, nor a file name (corerl.git, corerl.zip): modules and their names.
    names = set(re.findall(r"(?<![/\w.-])corerl(?:\.[A-Za-z_]\w*)+", _prose(page)))
    names = {name for name in names if name.rpartition(".")[2] not in FILE_SUFFIXES}
    unresolved = sorted(name for name in names if not _resolves(name))
    assert not unresolved, f"{page.relative_to(ROOT)} cites names that do not import: {unresolved}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_the_docs_cite_exists(page: Path) -> None:
    pattern = r"(?<![/\w.-])(?:corerl|benchmarks|tests|configs|notebooks|figures|data)/[\w./*-]*\w"
    missing = []
    for path in set(re.findall(pattern, _prose(page))):
        # figures/0N_x.png and notebooks/NN_*.ipynb stand for every notebook's number.
        glob = path.replace("NN", "[0-9][0-9]").replace("0N", "0[0-9]")
        if path not in NOT_IN_CHECKOUT and not list(ROOT.glob(glob)):
            missing.append(path)
    assert not missing, (
        f"{page.relative_to(ROOT)} cites paths that are not in the checkout: {sorted(missing)}"
    )


def test_the_regime_tables_of_the_docs_are_the_saved_results() -> None:
    """The README's matrix and the full tables of docs/results.md and figures/regimes.md are what
    ``corerl.study.curves`` makes of ``figures/regimes/*.json`` now: a result saved without its tables
    rewritten (or a table edited by hand) fails here."""
    from corerl.study.curves import REGIME_RESULTS, regime_markdown, regime_matrix, saved_regime_verdicts

    table = saved_regime_verdicts(REGIME_RESULTS)
    assert len(table), f"no saved regime results in {REGIME_RESULTS}"
    assert regime_matrix(table) in (ROOT / "README.md").read_text(), "README.md: regenerate the regime matrix"
    assert regime_matrix(table) in (ROOT / "figures/results.md").read_text(), (
        "figures/results.md: rerun notebook 06"
    )
    for page in ("docs/results.md", "figures/regimes.md", "figures/results.md"):
        assert regime_markdown(table) in (ROOT / page).read_text(), f"{page}: regenerate the regime table"
