"""Reference values of the campaign report's statistics, computed independently of the service.

The unit tests in services/campaign/src/domain/stats.rs and report.rs, and the conformance suite
(services/campaign/tests/conformance/suite.rs), compare against the numbers printed here.
Obtained with statsmodels 0.15.0, scipy 1.17.1, numpy 2.4.6 (`pip install statsmodels`):

    python3 services/campaign/tests/reference/report_statistics.py
"""

from fractions import Fraction

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

Z = stats.norm.isf(0.025)


def fieller(x1, n1, x2, n2):
    """Fieller's interval of p1 / p2 - 1 with unpooled Wald variances, for comparison only."""
    p1, p2 = x1 / n1, x2 / n2
    v1, v2 = p1 * (1 - p1) / n1, p2 * (1 - p2) / n2
    a, b, c = p2 * p2 - Z * Z * v2, -2 * p1 * p2, p1 * p1 - Z * Z * v1
    disc = b * b - 4 * a * c
    if a <= 0 or disc < 0:
        return "unbounded"
    return (float((-b - disc**0.5) / (2 * a) - 1), float((-b + disc**0.5) / (2 * a) - 1))


def linear_delta(x1, n1, x2, n2):
    """The delta method on the ratio itself (symmetric), for comparison only."""
    p1, p2 = x1 / n1, x2 / n2
    rel = p1 / p2 - 1
    se = (p1 / p2) * ((1 - p1) / x1 + (1 - p2) / x2) ** 0.5
    return (float(rel - Z * se), float(rel + Z * se))


print("== (a) relative uplift: Katz interval (delta method on log p_t/p_c), minus 1 ==")
for x1, n1, x2, n2 in [(200, 1000, 150, 1000), (36, 120, 9, 60), (3, 50, 7, 50), (1, 40, 1, 40)]:
    lo, hi = confint_proportions_2indep(x1, n1, x2, n2, method="log", compare="ratio")
    print(f"{x1}/{n1} vs {x2}/{n2}: relative {(x1 / n1) / (x2 / n2) - 1!r}"
          f"  katz [{float(lo) - 1!r}, {float(hi) - 1!r}]"
          f"  fieller {fieller(x1, n1, x2, n2)}  linear delta {linear_delta(x1, n1, x2, n2)}")
print("absolute (Wald, unpooled):",
      [float(v) for v in confint_proportions_2indep(200, 1000, 150, 1000, method="wald")])
print("p-value (pooled z-test):", float(proportions_ztest([200, 150], [1000, 1000])[1]))

print("\n== (b) variance of large, similar amounts ==")
big = [1_000_000_004, 1_000_000_007, 1_000_000_013, 1_000_000_016]
mean = Fraction(sum(big), len(big))
m2 = sum((Fraction(v) - mean) ** 2 for v in big)
n, s = len(big), float(sum(big))
naive = (sum(float(v) ** 2 for v in big) - n * (s / n) ** 2) / (n - 1)
print(f"exact: M2 {m2}, variance {m2 / (n - 1)}; numpy {float(np.var(np.array(big, float), ddof=1))!r};"
      f" sum-of-squares formula in f64 {naive!r}")
treatment = [1e9 + 10, 1e9 + 20, 1e9 + 30, 1e9 + 40]
control = [1e9 + 5, 1e9 + 10, 1e9 + 15]
welch = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
print("Welch CI, shifted by 1e9:", [float(v) for v in welch.tconfint_diff(usevar="unequal")])
print("t-interval of the shifted treatment mean:",
      [float(v) for v in DescrStatsW(treatment).tconfint_mean()])
for name, xs in (("treatment", treatment), ("control", control)):
    k = len(xs)
    print(f"  sum-of-squares variance of shifted {name}: {(sum(x * x for x in xs) - k * (sum(xs) / k) ** 2) / (k - 1)!r}"
          f" (true {float(np.var(xs, ddof=1))!r})")
print("report example, M2 per arm: treatment", 200 * (5000 - 1000) ** 2 + 800 * 1000**2,
      " control", 150 * (5000 - 750) ** 2 + 850 * 750**2)
welch = CompareMeans(DescrStatsW(np.array([5000.0] * 200 + [0.0] * 800)),
                     DescrStatsW(np.array([5000.0] * 150 + [0.0] * 850)))
print("report example, Welch CI:", [float(v) for v in welch.tconfint_diff(usevar="unequal")])

print("\n== (c) one observation per customer (conformance case) ==")
# Treatment: A enters twice and one purchase of 10,000 falls in both windows, B buys 300 (one
# entry), C buys nothing. Control: D buys 50. Revenue per customer, not per entry.
for arm, revenue in (("treatment", [10_000, 300, 0]), ("control", [50, 0])):
    xs = np.array(revenue, float)
    print(f"{arm}: members {len(xs)}, converters {int((xs > 0).sum())}, revenue {int(xs.sum())},"
          f" M2 {float(((xs - xs.mean()) ** 2).sum())!r}")
