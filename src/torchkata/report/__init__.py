"""Reports: ``report.md`` for one run, and the tour's ``index.md`` + self-contained ``index.html``.

Both are written from what the run folder holds (``config.json``, ``metrics.json`` and
the PNG figures), so a report can be rebuilt from a finished run at any time.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torchkata.registry import TIPS

__all__ = [
    "format_value",
    "markdown_to_html",
    "subplots",
    "write_run_report",
    "write_tour_report",
]


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots`` on the file-only Agg backend (no display needed).

    Examples:
        >>> fig, ax = subplots(figsize=(2, 2))
        >>> type(fig).__name__
        'Figure'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def format_value(value: float | None, unit: str = "") -> str:
    """A number as the report shows it: 4 significant digits, or '—' for none.

    Examples:
        >>> format_value(0.912345), format_value(1234.5, "s"), format_value(None)
        ('0.9123', '1234 s', '—')
    """
    if value is None:
        return "—"
    text = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    if "e" not in text and abs(value) >= 1000:
        text = f"{value:.0f}"
    return f"{text} {unit}".strip()


def _read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return config, metrics


def _headline_table(headlines: Sequence[dict[str, Any]]) -> list[str]:
    if not headlines:
        return []
    lines = ["| measure | measured | reference | reference source |", "|---|---|---|---|"]
    for h in headlines:
        name = h["name"] if h["higher_is_better"] else f"{h['name']} (lower is better)"
        lines.append(
            f"| {name} | {format_value(h['value'], h['unit'])} "
            f"| {format_value(h['reference'], h['unit'])} | {h['source'] or '—'} |"
        )
    return lines


def _run_markdown(run_dir: Path, heading: str = "#", figure_prefix: str = "") -> str:
    config, metrics = _read_run(run_dir)
    tip = next((t for t in TIPS if t.name == config["recipe"]), None)
    title = f"{tip.title} (tip {tip.number})" if tip else config["recipe"]
    versions = config.get("versions", {})
    lines = [
        f"{heading} {config['recipe']} — {title}",
        "",
        *([f"What was run: {tip.summary}.", ""] if tip else []),
        *([f"Guide: `{tip.guide}` in the torchkata repository.", ""] if tip and tip.guide else []),
        f"Reproduce: `{config.get('command') or 'torchkata run ' + config['recipe']}`",
        "",
        f"Preset `{config.get('preset') or 'default'}` · seed {config['seed']} · "
        f"device {config['resolved_device']} · torch {versions.get('torch', '?')} · "
        f"finished {metrics.get('finished', '?')}",
        "",
    ]
    table = _headline_table(metrics.get("headlines", []))
    if table:
        lines += [f"{heading}# Headline numbers", "", *table, ""]
    if metrics.get("notes"):
        lines += [f"{heading}# What the numbers show", ""]
        for note in metrics["notes"]:
            lines += [note, ""]
    if metrics.get("figures"):
        lines += [f"{heading}# Figures", ""]
        for name in metrics["figures"]:
            lines += [f"![{name}]({figure_prefix}{name}.png)", ""]
    lines += [
        f"{heading}# Config",
        "",
        "```json",
        json.dumps(config["config"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_run_report(run_dir: Path) -> Path:
    """Write ``report.md`` in a finished run folder and return its path."""
    run_dir = Path(run_dir)
    path = run_dir / "report.md"
    path.write_text(_run_markdown(run_dir))
    return path


# --------------------------------------------------------------------------- HTML

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![*\w])\*([^*]+)\*(?!\w)"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
]


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def markdown_to_html(markdown: str, images: dict[str, str] | None = None) -> str:
    """Convert the small Markdown subset reports use into HTML.

    Handles headings, paragraphs, ``-`` lists, pipe tables, fenced code, images, and
    inline code, bold, italics and links. ``images`` maps an image path to the ``src``
    to use instead (e.g. a ``data:`` URI, to make the page self-contained).

    Examples:
        >>> markdown_to_html("# Hi\\n\\nSome **bold** `code`.")
        '<h1>Hi</h1>\\n<p>Some <strong>bold</strong> <code>code</code>.</p>'
    """
    images = images or {}
    blocks: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            code = html.escape("\n".join(lines[i + 1 : j]))
            blocks.append(f"<pre><code>{code}</code></pre>")
            i = j + 1
        elif m := re.match(r"(#{1,6}) (.*)", line):
            level = len(m.group(1))
            blocks.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif m := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", line.strip()):
            alt, src = m.group(1), m.group(2)
            src = images.get(src, src)
            blocks.append(f'<figure><img alt="{html.escape(alt)}" src="{src}"></figure>')
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]
            head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
            trs = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body
            )
            blocks.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        elif re.match(r"\s*[-*] ", line):
            items = []
            while i < len(lines) and re.match(r"\s*[-*] ", lines[i]):
                item = re.sub(r"^\s*[-*] ", "", lines[i])
                items.append(f"<li>{_inline(item)}</li>")
                i += 1
            blocks.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while (
                i < len(lines)
                and lines[i].strip()
                and not re.match(r"(#|\||```|\s*[-*] )", lines[i])
            ):
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(blocks)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }
h1 { border-bottom: 2px solid #333; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }
th { background: #f3f3f3; } code { background: #f3f3f3; padding: 0 .2rem; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; }
figure { margin: 1rem 0; } img { max-width: 100%; }
.missing { color: #777; } .failed { color: #a00; }
"""


def write_tour_report(
    run_dirs: Sequence[Path], out: Path, failures: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """Write the tour's ``index.md`` and self-contained ``index.html`` into ``out``.

    Args:
        run_dirs: finished run folders, one per recipe run by the tour.
        out: the tour's folder (the run folders are usually inside it).
        failures: recipe name -> error text, for recipes whose run failed.

    Returns:
        ``(index_md, index_html)`` paths. The HTML embeds every figure as a ``data:`` URI.
    """
    out = Path(out)
    failures = failures or {}
    by_recipe = {json.loads((d / "config.json").read_text())["recipe"]: Path(d) for d in run_dirs}
    md_parts = [
        "# torchkata tour",
        "",
        "Each section is one tip of the source document: what was run, the headline numbers "
        "against their references, the figures, and the command that reproduces it.",
        "",
    ]
    html_sections = []
    for tip in TIPS:
        if tip.name in by_recipe:
            run_dir = by_recipe[tip.name]
            rel = run_dir.relative_to(out) if run_dir.is_relative_to(out) else run_dir
            md = _run_markdown(run_dir, heading="##", figure_prefix=f"{rel.as_posix()}/")
            images = {
                f"{rel.as_posix()}/{name}.png": "data:image/png;base64,"
                + base64.b64encode((run_dir / f"{name}.png").read_bytes()).decode()
                for name in json.loads((run_dir / "metrics.json").read_text())["figures"]
            }
            md_parts.append(md)
            html_sections.append(
                f'<section id="tip{tip.number}">{markdown_to_html(md, images)}</section>'
            )
        else:
            if tip.name in failures:
                status, css = f"failed: {failures[tip.name]}", "failed"
            else:
                status, css = "not run in this tour", "missing"
            md = f"## {tip.name} — {tip.title} (tip {tip.number})\n\n*{status}*\n"
            md_parts.append(md)
            html_sections.append(
                f'<section id="tip{tip.number}" class="{css}">{markdown_to_html(md)}</section>'
            )
    index_md = out / "index.md"
    index_md.write_text("\n".join(md_parts))
    intro = markdown_to_html("\n".join(md_parts[:4]))
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>torchkata tour</title>"
        f"<style>{_CSS}</style></head><body>\n{intro}\n"
        + "\n".join(html_sections)
        + "\n</body></html>\n"
    )
    index_html = out / "index.html"
    index_html.write_text(page)
    return index_md, index_html
