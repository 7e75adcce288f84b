"""mkdocs hooks of the documentation site (``mkdocs.yml``: ``hooks``).

* ``<!-- readme: TITLE -->`` on a line of its own is replaced by the README's section ``## TITLE...``
  (its body, links rewritten for the site), so the figures and commands of the README are
  written once;
* a relative link from a page to a file of the repository outside ``docs/`` (``../assemblers/ik/
  sqp.py``) reads on GitHub as it is; on the site it becomes the path in code (there is no page
  to link to), and a link to a file that does not exist is left alone, so ``--strict`` fails on it;
* nav entries listed in ``extra.pending_pages`` whose file does not exist yet are dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

_INCLUDE = re.compile(r"^<!--\s*readme:\s*(.+?)\s*-->\s*$", re.M)
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def _root(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def on_config(config, **kwargs):
    docs = Path(config["docs_dir"])
    pending = set(config["extra"].get("pending_pages", []))

    def keep(item):
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, str):
                return None if value in pending and not (docs / value).exists() else item
            kept = [k for k in (keep(i) for i in value) if k is not None]
            return {title: kept} if kept else None
        return None if item in pending and not (docs / item).exists() else item

    if config.get("nav"):
        config["nav"] = [k for k in (keep(i) for i in config["nav"]) if k is not None]
    return config


def readme_section(root: Path, title: str) -> str:
    """The body of the README's ``## title`` section, links made relative to ``docs/``."""
    text = (root / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(title)}.*$", text, re.M)  # the title, or its beginning
    if m is None:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"README.md has no section '## {title}' (included by a page)")
    rest = text[m.end():]
    end = re.search(r"^## ", rest, re.M)
    body = rest[: end.start()] if end else rest

    # README links are relative to the repository root; the site's pages live in docs/
    return re.sub(r"\]\(docs/", "](", body)


def on_page_markdown(markdown, page, config, files, **kwargs):
    root = _root(config)
    markdown = _INCLUDE.sub(lambda m: readme_section(root, m.group(1)), markdown)
    docs = Path(config["docs_dir"]).resolve()
    page_dir = (docs / page.file.src_uri).parent

    def outside(m):
        text, target = m.group(1), m.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            return m.group(0)
        path = (page_dir / target).resolve()
        try:
            path.relative_to(docs)
            return m.group(0)  # a page or image of the site: mkdocs checks it
        except ValueError:
            pass
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            return m.group(0)
        if not path.exists():
            return m.group(0)  # broken: mkdocs --strict reports it
        return text if text.strip("`") == rel else f"{text} (`{rel}`)"

    return _LINK.sub(outside, markdown)
