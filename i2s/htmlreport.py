"""An executed notebook rendered as the HTML report a reader opens: prose, tables and figures in full, each code
cell folded into a `<details>` toggle (the code stays in the page, one click away), and each cell's progress bars
shown as their last states, the whole stream folded under them."""
from __future__ import annotations

import copy
import html
import re
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
details.i2s-progress { margin: .2em 0; font: .8em/1.5 var(--jp-code-font-family, monospace); color: #555; }
details.i2s-progress > summary { cursor: pointer; }
details.i2s-progress pre { max-height: 20em; overflow: auto; background: #f7f7f7; padding: .4em; }
</style>
{% endblock extra_css %}
{% block input_group -%}
{%- set first = (cell.source.strip().splitlines() or [''])[0] -%}
<details class="i2s-code"><summary title="show the code of this cell">code: {{ first | truncate(100) | e }}</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""


# one tqdm state: "<label>: 42%|████ | 8/19 [00:05<00:07, 1.4it/s]" (the label may be empty)
BAR = re.compile(r"^(?P<label>.*?):?\s*\d{1,3}%\|.*\|\s*\d+(\.\d+)?[kMG]?/\d+(\.\d+)?[kMG]?\s*\[")


def _fragments(text: str) -> list[str]:
    """A terminal stream split where a carriage return or a newline starts a new state."""
    return [f for f in re.split(r"[\r\n]", text) if f.strip()]


def fold_progress(nb):
    """A copy of `nb` in which each cell's tqdm states (in stderr) become one block: the last state of every bar,
    the whole stream folded beneath it. Other stderr text (warnings, errors) stays where it was, word for word."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs, states, raw, first = [], {}, [], None
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream" or out.get("name") != "stderr":
                outputs.append(out)
                continue
            text = out.get("text", "")
            frags = _fragments(text)
            bars = [f for f in frags if BAR.match(f)]
            if not bars:
                outputs.append(out)
                continue
            raw.append(text)
            for f in bars:
                label = BAR.match(f).group("label").strip()
                states.pop(label, None)  # re-insert: the bars keep the order in which they last moved
                states[label] = f.strip()
            rest = [f for f in frags if not BAR.match(f)]
            if first is None:
                first = len(outputs)
                outputs.append(None)  # the progress block goes where the first bar was
            if rest:
                outputs.append({**out, "text": "\n".join(rest) + "\n"})
        if first is None:
            continue
        stream = "".join(raw).replace("\r", "\n")
        lines = "<br>".join(html.escape(v) for v in states.values())
        block = (f'<details class="i2s-progress"><summary title="show the whole progress stream">{lines}</summary>'
                 f"<pre>{html.escape(stream)}</pre></details>")
        outputs[first] = {"output_type": "display_data", "metadata": {}, "data": {"text/html": block}}
        cell["outputs"] = outputs
    return nb


def exporter():
    """nbconvert's HTMLExporter (lab template) with code cells folded."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    return HTMLExporter(template_name="lab", template_file=TEMPLATE, extra_loaders=[DictLoader({TEMPLATE: FOLDED_LAB})])


def render(executed: str | Path) -> Path:
    """Write <executed>.html beside the executed notebook; returns its path."""
    import nbformat
    executed = Path(executed)
    nb = nbformat.from_dict(fold_progress(nbformat.read(executed, as_version=4)))
    body, _ = exporter().from_notebook_node(nb)
    out = executed.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out
