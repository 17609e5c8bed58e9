"""Jinja templates of the HTML pages a run writes.

They are kept in code rather than as package data so that they install with the package
in every mode. The index templates are rendered with autoescaping, because device ids,
firmware versions and error messages come from the database and the notebooks.
"""

from __future__ import annotations

# No page loads anything from another host: the reports must open offline and must not
# tell a CDN who reads them.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"
)

# Extends nbconvert's lab template. It drops require.js, MathJax, Mermaid and widget
# scripts, which the lab template loads from a CDN, and adds a link back to the run index.
# Each PNG figure gets the alternative text of its output metadata
# (``{"image/png": {"alt": ...}}``, as `analysis.notebook.show_figure` writes it).
REPORT_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}
<meta http-equiv="Content-Security-Policy" content="{{ resources.content_security_policy }}">
{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block body_header -%}
{{ super() }}
<nav style="font-family: system-ui, sans-serif; font-size: 0.9rem; padding: 0.5rem 1rem;">
<a href="index.html">&larr; All reports of this run</a></nav>
{%- endblock body_header -%}
{% block data_png scoped %}
{%- set alt = output.metadata.get("image/png", {}).get("alt") or "Figure" -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img alt="{{ alt | escape_html }}"
  src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}">
</div>
{%- endblock data_png %}
"""

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.8rem; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; }
.status { font-weight: 600; }
.status-succeeded { color: #116611; }
.status-failed { color: #b00020; }
.error { white-space: pre-wrap; font-family: monospace; color: #b00020; }
.figures td:first-child { color: #555; }
"""

RUN_INDEX_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>DoorCounter reports, run {{ run.run_id }}</title>
<style>{{ style }}</style>
</head>
<body>
<p><a href="../index.html">&larr; All runs</a></p>
<h1>DoorCounter reports, run {{ run.run_id }}</h1>
<p class="status status-{{ run.status }}">Run {{ run.status|upper }}:
  {{ run.reports|selectattr("status", "equalto", "succeeded")|list|length }} of
  {{ run.reports|length }} {{ "report" if run.reports|length == 1 else "reports" }}
  succeeded in {{ "%.1f"|format(run.duration_s) }} s.</p>

<h2>Reports</h2>
<table>
<tr><th>Report</th><th>Status</th><th>Duration</th><th>Notebook</th><th>Error</th></tr>
{%- for report in run.reports %}
<tr>
  <td>{% if report.html %}<a href="{{ report.html }}">{{ report.title }}</a>
      {%- else %}{{ report.title }}{% endif %}</td>
  <td class="status status-{{ report.status }}">{{ report.status|upper }}</td>
  <td>{{ "%.1f"|format(report.duration_s) }} s</td>
  <td>{% if report.notebook %}<a href="{{ report.notebook }}">{{ report.notebook }}</a>
      {%- endif %}</td>
  <td>{% if report.error %}<span class="error">{{ report.error.name }}:
      {{ report.error.message }}</span>{% endif %}</td>
</tr>
{%- endfor %}
</table>

{%- for name, figures in summaries.items() if figures %}
<h2>Headline figures: {{ titles.get(name, name) }}</h2>
<table class="figures">
{%- for key, value in figures.items() %}
<tr><td>{{ key }}</td><td>{{ value }}</td></tr>
{%- endfor %}
</table>
{%- endfor %}

<h2>Parameters</h2>
<table>
{%- for key, value in parameters.items() %}
<tr><th>{{ key }}</th><td>{{ value }}</td></tr>
{%- endfor %}
</table>

<h2>Source database</h2>
<table>
{%- for key, value in database.items() %}
<tr><th>{{ key }}</th><td>{{ value }}</td></tr>
{%- endfor %}
</table>
<p>Started {{ run.started_at }}, finished {{ run.finished_at }}.
   analysis {{ run.versions.analysis }}, Python {{ run.versions.python }},
   pandas {{ run.versions.pandas }}.</p>
</body>
</html>
"""

RUNS_INDEX_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>DoorCounter report runs</title>
<style>{{ style }}</style>
</head>
<body>
<h1>DoorCounter report runs</h1>
{%- if not runs %}
<p>No runs yet. Create one with <code>fleet-report run</code>.</p>
{%- else %}
<table>
<tr><th>Run</th><th>Status</th><th>Reports</th><th>Window</th><th>Database</th>
    <th>Duration</th></tr>
{%- for run in runs %}
<tr>
  <td><a href="{{ run.run_id }}/index.html">{{ run.run_id }}</a></td>
  <td class="status status-{{ run.status }}">{{ run.status|upper }}</td>
  <td>{{ run.succeeded }} of {{ run.total }} succeeded
      {%- if run.failed_names %} (failed: {{ run.failed_names|join(", ") }}){% endif %}</td>
  <td>{{ run.window }}</td>
  <td>{{ run.database }}</td>
  <td>{{ "%.1f"|format(run.duration_s) }} s</td>
</tr>
{%- endfor %}
</table>
{%- endif %}
</body>
</html>
"""
