"""The look shared by the HTML reports (the demo's and the backtest's): one stylesheet, one colour per event.

Why its own module: both reports use it, and the backtest report must not depend on the demo (the demo
runs the daemon, which runs backtests), so neither may hold it.
"""

from __future__ import annotations

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:980px;color:#1d232b}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:2em;border-bottom:1px solid #dde3ea;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.6em 0 1.2em} th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #e6eaef;vertical-align:top} th{background:#f4f6f9;font-weight:600}
.ok{color:#137333;font-weight:600} .bad{color:#b3261e;font-weight:600} .muted{color:#5f6b7a}
.card{border:1px solid #dde3ea;border-radius:8px;padding:1em 1.2em;margin:1em 0;background:#fff}
code{background:#f4f6f9;padding:0 4px;border-radius:4px} svg{display:block;margin:.4em 0}
.legend span{margin-right:1.2em} .swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
"""
COLORS = {"fault": "#b3261e", "detected": "#e37400", "action": "#1a73e8", "healed": "#137333", "escalated": "#7b1fa2"}
