"""An executed notebook rendered as the HTML report a reader opens."""
from __future__ import annotations

from pathlib import Path


def render(executed: str | Path) -> Path:
    """Write <executed>.html beside the executed notebook; returns its path."""
    import nbformat
    from nbconvert import HTMLExporter
    executed = Path(executed)
    nb = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = executed.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out
