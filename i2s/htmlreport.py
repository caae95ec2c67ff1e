"""An executed notebook rendered as the HTML report a reader opens: prose, tables and figures in full, each code
cell folded into a `<details>` toggle (the code stays in the page, one click away)."""
from __future__ import annotations

from pathlib import Path

TEMPLATE = "i2s_report.html.j2"
# nbconvert's lab template with one change: a code cell's input sits in a closed <details>, its summary the cell's
# first line, so a reader skims the results and opens the code only where it matters.
FOLDED_LAB = r"""{%- extends 'index.html.j2' -%}
{% block extra_css %}
{{ super() }}
<style>
details.i2s-code { margin: 0 0 .2em 0; }
details.i2s-code > summary { cursor: pointer; color: #777; font: .8em/1.6 var(--jp-code-font-family, monospace);
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; list-style-position: inside; }
details.i2s-code[open] > summary { color: #333; }
</style>
{% endblock extra_css %}
{% block input_group -%}
{%- set first = (cell.source.strip().splitlines() or [''])[0] -%}
<details class="i2s-code"><summary title="show the code of this cell">code: {{ first | truncate(100) | e }}</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""


def exporter():
    """nbconvert's HTMLExporter (lab template) with code cells folded."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    return HTMLExporter(template_name="lab", template_file=TEMPLATE, extra_loaders=[DictLoader({TEMPLATE: FOLDED_LAB})])


def render(executed: str | Path) -> Path:
    """Write <executed>.html beside the executed notebook; returns its path."""
    import nbformat
    executed = Path(executed)
    nb = nbformat.read(executed, as_version=4)
    body, _ = exporter().from_notebook_node(nb)
    out = executed.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out
