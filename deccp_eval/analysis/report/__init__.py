"""The static HTML report (`write.write_report`), its plots and model comparisons.

Everything heavy (jinja2, matplotlib) is imported inside the functions, so importing these modules
from the CLI costs nothing."""
