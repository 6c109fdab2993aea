"""Measure what a real browser draws: headless Chromium lays out a page, a script added to a copy of it
reports the bounding boxes of the chart labels, and the test compares them (no estimate of font widths)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_MEASURE = """<script>
const report = {labels: 0, overlaps: [], outside: []};
for (const svg of document.querySelectorAll('svg')) {
  const frame = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll('text.marker-label')].map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  });
  report.labels += boxes.length;
  boxes.forEach((a, i) => {
    if (a.left < frame.left || a.right > frame.right) report.outside.push(a.text);
    boxes.slice(i + 1).forEach(b => {
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
        report.overlaps.push([a.text, b.text]);
      }
    });
  });
}
const pre = document.createElement('pre');
pre.id = 'label-check';
pre.textContent = JSON.stringify(report);
document.body.appendChild(pre);
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian package chromium is required: bash scripts/install-test-deps.sh"
    return found


def label_layout(page: Path) -> dict[str, Any]:
    """``{labels, overlaps, outside}`` for the ``text.marker-label`` elements of every SVG in ``page``, as
    headless Chromium lays them out (the page itself carries no script; a copy gets the measuring one)."""
    with tempfile.TemporaryDirectory(prefix="label-check-") as tmp:
        copy = Path(tmp) / "page.html"
        copy.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
        profile = Path(tmp) / "profile"
        out = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-sync",
                "--disable-background-networking",
                "--disable-component-update",
                f"--user-data-dir={profile}",
                "--window-size=1100,3000",
                "--dump-dom",
                copy.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    found = re.search(r'<pre id="label-check">(.*?)</pre>', out.stdout, flags=re.S)
    assert found, "the measuring script did not run: " + out.stdout[-2000:]
    return dict(json.loads(html.unescape(found.group(1))))
