"""Horizontal bar charts drawn by pygal, as SVG to put inline in a page: the web front's disclosure
and `relief-audit report` share this one helper.

No script (`js=[]`: pygal's tooltips come from a CDN, and the pages allow only their own scripts),
no stylesheet or font from outside (pygal inlines its own CSS in a <style> inside the SVG, under the
chart's own id, which the pages' `style-src 'self' 'unsafe-inline'` allows), no XML declaration.
The SVG has a viewBox and no width, so it shrinks to a 360 px phone; values are printed at the end
of each bar, so it reads on paper without hovering.
"""

from collections.abc import Callable

import pygal
from pygal.style import Style

COLOURS = ("#1f6fb2", "#2e9d5b", "#d08a1c", "#b23a3a")
WIDTH = 480  # viewBox units; the page's CSS caps the drawn width (.chart{max-width:...})
FONT = 15  # in viewBox units: about 10 px on a 360 px phone, about 20 px at 640 px
BAR = 24  # height of one bar, in viewBox units

STYLE = Style(
    background="#fff", plot_background="#fff", foreground="#222", foreground_strong="#222",
    foreground_subtle="#999", font_family="system-ui, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif",
    label_font_size=FONT, major_label_font_size=FONT, value_font_size=FONT - 1, legend_font_size=FONT - 1,
    title_font_size=FONT, colors=COLOURS, value_colors=("#222",) * len(COLOURS), opacity="1",
    opacity_hover="1", transition="0ms")


def number(value: float) -> str:
    """12.345.678: Vietnamese thousands separators, whole numbers."""
    return f"{int(round(value)):,}".replace(",", ".")


def grouped_bars(title: str, rows: list[tuple[str, list[float]]], series: list[str], unit: str = "",
                 fmt: Callable[[float], str] | None = None, top: float | None = None, width: int = WIDTH) -> str:
    """Horizontal bars, one group per row (top to bottom in the given order), one bar per series.
    With a `unit` every bar is on one scale; without one (items in different units) each row is
    scaled to its own maximum; `top` fixes the scale's end (100 for percentages). Each bar is
    labelled with its real value, `fmt(value)` ("1.234 unit" by default). A legend names the series
    when there are two or more."""
    if not rows:
        return ""
    fmt = fmt or (lambda v: number(v) + (f" {unit}" if unit else ""))
    per_row = not unit
    overall = top or max([v for _, values in rows for v in values] + [0]) or 1
    longest = max(len(fmt(v)) for _, values in rows for v in values)
    longest_label = max(len(label) for label, _ in rows)
    # Room right of the longest bar for its printed value: pygal stretches the value axis to
    # `headroom` times the largest value (a rough width for the text, 0.6 em per character).
    plot = width - 24 - min(longest_label, 26) * FONT * 0.55
    headroom = 1 / max(0.25, 1 - (longest * (FONT - 1) * 0.6 + 12) / plot)
    # The legend on one line when the names fit side by side in the plot's width, else one per line.
    side_by_side = all(len(name) * (FONT - 1) * 0.6 + FONT + 8 < plot / len(series) for name in series)
    legend_rows = 0 if len(series) < 2 else 1 if side_by_side else len(series)
    height = 16 + len(rows) * (len(series) * BAR + 12) + (legend_rows * (FONT + 6) + 12 if legend_rows else 0)
    chart = pygal.HorizontalBar(
        width=width, height=height,
        style=STYLE, js=[], disable_xml_declaration=True, classes=["chart"], show_legend=bool(legend_rows),
        legend_at_bottom=True, legend_at_bottom_columns=len(series) if side_by_side else 1, legend_box_size=FONT - 3,
        print_values=True, print_values_position="top", print_zeroes=True, show_x_labels=False,
        show_y_guides=False, show_x_guides=False, range=(0, (1 if per_row else overall) * headroom),
        margin=4, spacing=8, truncate_label=26, truncate_legend=-1)
    chart.add_xml_filter(_inline_and_static(title))  # print_values_position "top": at the bar's end
    ordered = rows[::-1]  # pygal draws the first label at the bottom
    chart.x_labels = [label for label, _ in ordered]
    for i, name in enumerate(series):
        values = []
        for _, row in ordered:
            scale = (max(row) or 1) if per_row else 1
            values.append({"value": row[i] / scale, "formatter": (lambda _, v=row[i]: fmt(v))})
        chart.add(name, values)
    return chart.render()


def _inline_and_static(title: str):
    """An xml filter on pygal's tree before it is written out. It takes out the inline <script>
    pygal writes even with `js=[]` (its config for the tooltips, which `script-src 'self'` blocks),
    the tooltips' hidden parts, and the comments (URLs to pygal's site); it names the chart for
    screen readers and starts each printed value just right of its bar (pygal centres it there)."""
    def tidy(root):
        root.set("role", "img")
        root.set("aria-label", title)
        for node in list(root):
            if not isinstance(node.tag, str):  # comments
                root.remove(node)
            elif node.tag == "title":
                node.text = title
        for defs in root.iter("defs"):
            for script in defs.findall("script"):
                defs.remove(script)
        for overlay in root.iter("g"):
            classes = overlay.get("class", "").split()
            if "text-overlay" in classes:
                for text in overlay.iter("text"):
                    text.set("text-anchor", "start")
                    text.set("x", f"{float(text.get('x')) - FONT / 2 + 4:.1f}")
        for parent in list(root.iter()):
            for child in list(parent):
                if child.tag == "desc" or "tooltip-overlay" in child.get("class", "").split():
                    parent.remove(child)
        return root
    return tidy
