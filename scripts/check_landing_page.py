"""Does the report's landing page read in a browser window of a given width? Measured in headless Chromium.

    python scripts/check_landing_page.py results/report.html [--width 1400] [--height 900]
                                         [--chromium /usr/bin/chromium] [--screenshot landing.png]

The verdicts issue asks that the landing page read in a 1,400-px browser window: no wrapped table cell, no
table or figure wider than the window, and no long paragraph. The text is built to that end
(``ptycho_core.evaluate.headline.landing_rst``: non-breaking spaces in cells, short bullets), but only a
browser can say how Snakemake's report lays it out. This script opens a copy of the report in headless
Chromium (``--dump-dom`` after the page's scripts ran, the window at ``--width`` x ``--height``), with a
measuring script added at the end of the page, and checks what the browser laid out:

- **cells**: every table cell of the landing page holds one line of text (the text's line boxes, from
  ``Range.getClientRects``, share one top edge);
- **tables and figures**: every table and image ends inside the window (right edge <= width), and the page
  does not scroll sideways (``scrollWidth`` <= the window's inner width);
- **paragraphs**: no paragraph or bullet runs past ``--max-words`` words (default 60).

It prints one line per check with the measured figures and exits 1 when one fails. ``--screenshot``
also saves the first ``--height`` px of the page as the browser draws it.

Chromium is not a dependency of the study or its tests (Debian: ``apt-get install chromium``); the
unit tests of :mod:`ptycho_core.evaluate.headline` check the text, this script checks the layout.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Chromium's switches for a headless run on a machine without a screen or network (as root: no sandbox).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
#: Virtual milliseconds the page's scripts get before the DOM is dumped (the report renders client-side).
VIRTUAL_TIME_MS = 20_000
#: The marker the measuring script writes its JSON into.
MARKER = "landing-check"

#: Runs after the report rendered; measures the landing page (the block that holds the study's tables).
MEASURE_JS = r"""
<script>
(function () {
  function lineCount(el) {
    const tops = new Set();
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(n);
      for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.top));
    }
    return tops.size;
  }
  function measure() {
    const tables = Array.from(document.querySelectorAll("table"));
    const landing = tables.length ? tables[0].closest("div, section, article, main") : null;
    let root = landing;
    while (root && root.querySelectorAll("table").length < tables.length) root = root.parentElement;
    root = root || document.body;
    const width = window.innerWidth;
    const cells = [];
    for (const cell of root.querySelectorAll("td, th")) {
      cells.push({text: cell.textContent.trim().slice(0, 80), lines: lineCount(cell)});
    }
    const boxes = [];
    for (const el of root.querySelectorAll("table, img")) {
      const r = el.getBoundingClientRect();
      boxes.push({tag: el.tagName.toLowerCase(), left: r.left, right: r.right, width: r.width, height: r.height,
                  natural: el.naturalWidth || null});
    }
    const paragraphs = [];
    for (const el of root.querySelectorAll("p, li")) {
      if (el.closest("td, th")) continue;
      const words = el.textContent.trim().split(/\s+/).filter(Boolean).length;
      paragraphs.push({words: words, text: el.textContent.trim().slice(0, 80)});
    }
    const out = {
      inner_width: width,
      scroll_width: document.documentElement.scrollWidth,
      tables: tables.length,
      cells: cells,
      boxes: boxes,
      paragraphs: paragraphs,
      headings: Array.from(root.querySelectorAll("caption, p strong")).map(e => e.textContent.trim().slice(0, 60)),
    };
    const pre = document.createElement("pre");
    pre.id = "MARKER";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  window.addEventListener("load", function () { setTimeout(measure, 3000); });
})();
</script>
""".replace("MARKER", MARKER)


def _chromium(binary: str, page: Path, width: int, height: int, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--virtual-time-budget={VIRTUAL_TIME_MS}",
            *extra,
            page.as_uri(),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def measure(report: Path, *, chromium: str, width: int, height: int, screenshot: Path | None) -> dict:
    """The measuring script's record of ``report`` laid out at ``width`` x ``height``."""
    text = report.read_text(encoding="utf-8")
    if "</body>" not in text:
        raise SystemExit(f"{report}: no </body>: not an HTML report")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        head, tail = text.rsplit("</body>", 1)
        page.write_text(head + MEASURE_JS + "</body>" + tail, encoding="utf-8")
        done = _chromium(chromium, page, width, height, "--dump-dom")
        if screenshot is not None:
            shot = _chromium(chromium, page, width, height, f"--screenshot={screenshot.resolve()}")
            if shot.returncode != 0 or not screenshot.exists():
                raise SystemExit(f"{chromium}: no screenshot (exit {shot.returncode}): {shot.stderr[-500:]}")
    found = re.search(rf'<pre id="{MARKER}">(.*?)</pre>', done.stdout, re.S)
    if done.returncode != 0 or not found:
        raise SystemExit(
            f"{chromium}: the page did not report its layout (exit {done.returncode}): {done.stderr[-800:]}"
        )
    return json.loads(html.unescape(found.group(1)))


def checks(record: dict, *, width: int, max_words: int) -> list[tuple[bool, str]]:
    """(passed, line) per check of :func:`measure`'s record."""
    cells = record["cells"]
    wrapped = [c for c in cells if c["lines"] > 1]
    tables = [b for b in record["boxes"] if b["tag"] == "table"]
    images = [b for b in record["boxes"] if b["tag"] == "img"]
    wide = [b for b in record["boxes"] if b["right"] > width + 0.5]
    paragraphs = record["paragraphs"]
    longest = max(paragraphs, key=lambda p: p["words"], default={"words": 0, "text": ""})
    return [
        (record["tables"] > 0 and bool(cells), f"tables laid out: {record['tables']}, cells: {len(cells)}"),
        (
            not wrapped,
            f"cells on one line: {len(cells) - len(wrapped)} of {len(cells)}"
            + "".join(f"\n    wrapped ({c['lines']} lines): {c['text']!r}" for c in wrapped[:10]),
        ),
        (
            not wide,
            f"tables and figures inside {width} px: widest table ends at "
            f"{max((b['right'] for b in tables), default=0):.0f} px, widest figure at "
            f"{max((b['right'] for b in images), default=0):.0f} px ({len(images)} figures)",
        ),
        (
            record["scroll_width"] <= record["inner_width"],
            f"no sideways scroll: page {record['scroll_width']} px in a window of {record['inner_width']} px",
        ),
        (
            longest["words"] <= max_words,
            f"paragraphs and bullets at most {max_words} words: longest {longest['words']} "
            f"({len(paragraphs)} in all): {longest['text']!r}",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--max-words", type=int, default=60)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args(argv)
    if not args.report.is_file():
        raise SystemExit(f"{args.report}: no such report")
    if not Path(args.chromium).exists():
        raise SystemExit(f"{args.chromium}: no Chromium (Debian: apt-get install chromium)")
    record = measure(
        args.report, chromium=args.chromium, width=args.width, height=args.height, screenshot=args.screenshot
    )
    results = checks(record, width=args.width, max_words=args.max_words)
    for ok, line in results:
        print(("PASS " if ok else "FAIL ") + line)
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
