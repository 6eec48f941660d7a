"""Operating exported models (paper 001 §5): what happens after an export is served.

Reading the prediction log, KPIs per language over time windows, candidate vs production on
frozen data, and batch scoring at scale. No Lightning: these jobs read exports through the
serving registry and the project's KPI functions, never training state.
"""
