"""The README and the docs site: a short README, every relative link pointing at a file (and heading) that
exists, and every page in the site's nav. `make lint` also builds the site with `mkdocs build --strict`."""

import re
import unicodedata
from pathlib import Path

import pytest
import yaml

from helpers import REPO

README_MAX_LINES = 250
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def pages() -> list[Path]:
    """Every Markdown file whose links are checked: the README, the site's pages and the folder READMEs."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "config" / "README.md",
            REPO / "benchmarks" / "README.md"]


def prose(text: str) -> str:
    """`text` without fenced code blocks and code spans (links in code are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (MkDocs) and GitHub give a heading, for plain-ASCII headings."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("*", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for _, heading in HEADING.findall(FENCE.sub("", page.read_text())):
        s = slug(heading)
        found.add(f"{s}_{seen[s]}" if s in seen else s)
        seen[s] = seen.get(s, 0) + 1
    return found


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text())) if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]


def shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def broken_links(page: Path) -> list[str]:
    """Links of `page` to a file that does not exist, or to a heading its Markdown target lacks."""
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no file {shown(file)})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {shown(file)})")
    return broken


def test_readme_is_short():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move the rest to a page in docs/"
    assert len(relative_links(REPO / "README.md")) >= 10, "the README links the docs pages"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_an_existing_file(page):
    assert broken_links(page) == [], f"{shown(page)}: broken links"


def test_the_link_check_finds_planted_broken_links(tmp_path):
    (tmp_path / "there.md").write_text("# Title\n\n## A heading: with `code`\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md) [ok](there.md#a-heading-with-code) [web](https://example.org/x.md) `[code](gone.md)`\n"
                    "```\n[fenced](gone.md)\n```\n"
                    "[missing](gone.md) ![missing](gone.png) [no heading](there.md#nope) [self](#nope)\n")
    assert [b.split(" ")[0] for b in broken_links(page)] == ["gone.md", "gone.png", "there.md#nope", "#nope"]


def test_every_page_is_in_the_site_nav():
    def files(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from files(value) if isinstance(value, list) else [value]

    nav = set(files(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]))
    on_disk = {p.name for p in (REPO / "docs").glob("*.md")}
    assert nav == on_disk, f"not in mkdocs.yml's nav: {sorted(on_disk - nav)}; in the nav but missing: {sorted(nav - on_disk)}"
