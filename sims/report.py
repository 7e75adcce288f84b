"""Old import path (docs/architecture.md, "Old import paths"): the robustness report moved to
:mod:`sims.robustness.report`."""

from sims.robustness.report import (  # noqa: F401
    FIGURES,
    draw_figures,
    markdown,
    summary_rows,
    terminal_summary,
    text_table,
    write_report,
)
