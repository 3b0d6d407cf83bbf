"""Three ways to calibrate confidence, fitted on one half of drive 0006R0 and measured on the other (fold weights).

    python benchmarks/confidence-2026-12-07/fold_margins.py        # writes /tmp/fold_margins.npz (a quarter of the pixels)
    python benchmarks/confidence-2026-12-07/compare_calibrations.py

- two-way T (what streamseg does now): p = sigmoid(margin / T), never under 0.5;
- Platt on the margin: p = sigmoid(a * margin + b), which can go under 0.5;
- softmax T: the top class's softmax probability at temperature T (every class's score needed).
"""

import numpy as np

from streamseg.eval.calibration import expected_calibration_error, fit_temperature

data = np.load("/tmp/fold_margins.npz")
margin, correct, frame, scores = data["m"].astype(np.float64), data["c"], data["f"], data["lse"].astype(np.float64)
first = frame < 50


def platt(x, y, iterations=30):
    a, b = 1.0, 0.0
    for _ in range(iterations):  # Newton's method on the logistic log-likelihood
        p = 1 / (1 + np.exp(-(a * x + b)))
        w = p * (1 - p) + 1e-12
        gradient = np.array([np.sum((p - y) * x), np.sum(p - y)])
        hessian = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
    return a, b


def softmax_top(s, t):
    z = s / t
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e.max(1) / e.sum(1)


def softmax_temperature(s, y):
    def nll(t):
        p = softmax_top(s, t)
        return -np.mean(np.where(y, np.log(p + 1e-12), np.log(1 - p + 1e-12)))
    return min(np.exp(np.linspace(np.log(0.3), np.log(5), 60)), key=nll)


for fit, test, name in ((first, ~first, "fit on the first half, measured on the second"), (~first, first, "fit on the second, measured on the first")):
    t = fit_temperature(margin[fit], correct[fit])
    two_way = 1 / (1 + np.exp(-margin[test] / t))
    a, b = platt(margin[fit], correct[fit].astype(float))
    platt_p = 1 / (1 + np.exp(-(a * margin[test] + b)))
    ts = softmax_temperature(scores[fit][::4], correct[fit][::4])
    soft = softmax_top(scores[test], ts)
    print(f"{name}: true accuracy {correct[test].mean():.3f}")
    for label, p, fitted in (("two-way T", two_way, f"T {t:.2f}"), ("Platt", platt_p, f"a {a:.2f} b {b:.2f}"), ("softmax T", soft, f"T {ts:.2f}")):
        print(f"  {label:<10} {fitted:<16} ECE {100 * expected_calibration_error(p, correct[test]):.2f}%  mean p {p.mean():.3f}")
