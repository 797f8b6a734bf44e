"""The report draws on figures of its own (an Agg canvas each), never through pyplot's backend: a held-out
review's ``faithbench.run`` in a notebook switched the process to Agg (``matplotlib.use`` at import of the
report modules), and the user's own plots stopped showing."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_plotting_keeps_the_users_backend_and_opens_no_pyplot_figure(tmp_path):
    code = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")  # the user's choice (a notebook's inline backend alike)
        import matplotlib.pyplot as plt
        import numpy as np
        import pandas as pd
        import faithbench
        from faithbench.reports import plots

        rows = [{{"dataset": "d", "model": "m", "metric": "a", "explainer": e, "seed": 0, "sample_id": f"s{{i}}",
                  "value": float(i * k), "higher_is_better": True, "chance": np.nan}}
                for k, e in enumerate(("x", "y")) for i in range(6)]
        written = plots.plot_distributions(pd.DataFrame(rows), __import__("pathlib").Path({str(tmp_path)!r}))
        assert written and all(p.exists() for p in written)
        print(matplotlib.get_backend(), plt.get_fignums())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["svg", "[]"]
