#!/usr/bin/env python3
"""Times lifetimes' BetaGeoFitter on a per-customer summary, for the value model benchmark.

Usage: lifetimes_fit.py SUMMARY.csv   (columns frequency, recency, T; any one time unit)

Prints `customers N`, the fitted parameters and `fit_seconds S` (the fit alone: reading the CSV
is not timed). Exits with status 2 and a reason on stderr when pandas or lifetimes is missing,
so the benchmark can say so. Install: `pip install lifetimes` (see docs/BENCHMARKS.md for the
versions measured).
"""
import sys
import time

try:
    import pandas as pd
    from lifetimes import BetaGeoFitter
except Exception as error:  # noqa: BLE001 - any import failure means "not installed here"
    print(f"lifetimes is not installed here ({error})", file=sys.stderr)
    sys.exit(2)

summary = pd.read_csv(sys.argv[1])
print(f"customers {len(summary)}")

# As its documentation shows it: one row per customer.
fitter = BetaGeoFitter(penalizer_coef=0.0)
started = time.perf_counter()
fitter.fit(summary["frequency"], summary["recency"], summary["T"])
elapsed = time.perf_counter() - started
params = fitter.params_
print(
    "lifetimes params r {:.4f} alpha {:.3f} a {:.4f} b {:.4f}".format(
        params["r"], params["alpha"], params["a"], params["b"]
    )
)
print(f"fit_seconds {elapsed:.3f}")

# Its faster form: identical customers grouped, with weights (the grouping timed apart).
started = time.perf_counter()
grouped = summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="weights")
grouping = time.perf_counter() - started
started = time.perf_counter()
BetaGeoFitter(penalizer_coef=0.0).fit(
    grouped["frequency"], grouped["recency"], grouped["T"], weights=grouped["weights"]
)
print(f"grouped_rows {len(grouped)} grouping_seconds {grouping:.3f}")
print(f"fit_grouped_seconds {time.perf_counter() - started:.3f}")
