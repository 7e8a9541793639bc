"""The README and docs/ link to one another by relative paths and heading anchors: every such link must land."""

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("plugins/*/README.md"))]


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@functools.cache
def anchors(page: Path) -> set[str]:
    """The anchors of every heading of a page; a "# " comment line in a code block counts too, which may let a link
    to one pass but never fails a good link."""
    return {anchor(h) for h in re.findall(r"^#+ (.*)$", page.read_text(), re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_land(page):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not ours to check offline
            continue
        path, _, heading = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif heading and linked.suffix == ".md" and heading not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: {', '.join(broken)}"


def test_anchor_follows_github():
    assert anchor("Other wavelengths, grids and profiles (`Pattern`, `xrdzoo.xrd.profiles`)") == (
        "other-wavelengths-grids-and-profiles-pattern-xrdzooxrdprofiles")
    assert anchor("Screening at scale (16,492 formulas)") == "screening-at-scale-16492-formulas"
