"""Reports over the rows the engine writes: the statutory figures, the coordinator's dashboard,
process analytics and the event log export (no Flask here; the web and the CLI both use these)."""
from .dashboard import Dashboard, build_dashboard
from .eventlog import write_csv, write_xes
from .history import cohort_history
from .periods import Period, last_complete_financial_year, last_twelve_months, parse_period
from .process import ProcessAnalytics, process_analytics
from .statutory import FIGURE_KEYS, FIGURES, StatutoryFigures, cases_behind, statutory_figures

__all__ = ["Dashboard", "build_dashboard", "write_csv", "write_xes", "cohort_history", "Period",
           "last_complete_financial_year", "last_twelve_months", "parse_period", "ProcessAnalytics",
           "process_analytics", "FIGURE_KEYS", "FIGURES", "StatutoryFigures", "cases_behind", "statutory_figures"]
