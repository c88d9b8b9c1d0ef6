//! Pure statistics behind `mlambda report`: quantiles, AUC with DeLong's variance (and DeLong's paired test of two
//! models scored on the same rows), PSI, log loss, Brier, normal tails, score intervals for error rates, and the
//! α-spending that keeps repeated looks honest.
//!
//! Expected values in the tests were computed independently with numpy 2 / scikit-learn / scipy in the venv; the
//! snippet that made each one is next to it.

/// Quantile `q` in [0, 1] of ascending `sorted` data, interpolating linearly between order statistics (numpy's
/// default `linear` method, Hyndman–Fan type 7), so `report` and `np.percentile` agree exactly.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * q.clamp(0.0, 1.0);
    let lo = (h.floor() as usize).min(last);
    let hi = (lo + 1).min(last);
    let t = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // numpy's _lerp: the form that is exact at both ends
    Some(if t >= 0.5 { b - (b - a) * (1.0 - t) } else { a + (b - a) * t })
}

/// 1-based ranks, ties sharing the mean of the ranks they span.
fn midranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// The area under the ROC curve and DeLong's estimate of its variance.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Auc {
    pub auc: f64,
    /// `None` with fewer than two positives or two negatives: DeLong's sample variances need two of each.
    pub variance: Option<f64>,
}

/// One model's AUC and DeLong's structural components: `v10[i]` is the share of negatives positive `i` beats,
/// `v01[j]` the share of positives that beat negative `j` (ties count one half in both).
struct Components {
    auc: f64,
    v10: Vec<f64>,
    v01: Vec<f64>,
}

/// [`Components`] from midranks in O(n log n) (Sun & Xu 2014); `None` unless both classes are present.
fn components(positives: &[f64], negatives: &[f64]) -> Option<Components> {
    let (m, n) = (positives.len(), negatives.len());
    if m == 0 || n == 0 {
        return None;
    }
    let all: Vec<f64> = positives.iter().chain(negatives).copied().collect();
    let tz = midranks(&all);
    let tx = midranks(positives);
    let ty = midranks(negatives);
    let (mf, nf) = (m as f64, n as f64);
    let rank_sum: f64 = tz[..m].iter().sum();
    let auc = (rank_sum - mf * (mf + 1.0) / 2.0) / (mf * nf);
    let v10: Vec<f64> = (0..m).map(|i| (tz[i] - tx[i]) / nf).collect();
    let v01: Vec<f64> = (0..n).map(|j| 1.0 - (tz[m + j] - ty[j]) / mf).collect();
    Some(Components { auc, v10, v01 })
}

/// AUC from the Mann–Whitney U statistic (ties count one half) and DeLong's variance, computed from midranks
/// in O(n log n) (Sun & Xu 2014). `None` unless both classes are present.
pub fn auc_delong(positives: &[f64], negatives: &[f64]) -> Option<Auc> {
    let c = components(positives, negatives)?;
    let (mf, nf) = (positives.len() as f64, negatives.len() as f64);
    let variance = match (sample_variance(&c.v10), sample_variance(&c.v01)) {
        (Some(s10), Some(s01)) => Some(s10 / mf + s01 / nf),
        _ => None,
    };
    Some(Auc { auc: c.auc, variance })
}

fn sample_variance(x: &[f64]) -> Option<f64> {
    sample_covariance(x, x)
}

/// Sample covariance (ddof 1) of two equally long series; `None` with fewer than two values.
fn sample_covariance(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() < 2 || x.len() != y.len() {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    Some(x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / (n - 1.0))
}

/// Two models' AUCs on the same rows and the covariance between them (DeLong, DeLong & Clarke-Pearson 1988):
/// with both models' structural components, `S = S10 / m + S01 / n`, where `S10` and `S01` are the 2×2 sample
/// covariance matrices of the components over the `m` positives and the `n` negatives. `baseline.variance` is
/// `S_AA`, `candidate.variance` is `S_BB`, `covariance` is `S_AB`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairedAuc {
    pub baseline: Auc,
    pub candidate: Auc,
    /// `None` with fewer than two positives or two negatives, like the variances.
    pub covariance: Option<f64>,
    pub positives: u64,
    pub negatives: u64,
}

impl PairedAuc {
    /// `var(AUC_B − AUC_A) = S_AA + S_BB − 2 S_AB`. Far smaller than the unpaired sum of the variances when
    /// the two models rank the same rows alike, which is what makes a backtest sharper than an A/B test.
    pub fn difference_variance(&self) -> Option<f64> {
        Some(self.baseline.variance? + self.candidate.variance? - 2.0 * self.covariance?)
    }
}

/// DeLong's paired AUCs from each labeled row's two scores, `[baseline, candidate]`, split by outcome. Ties
/// count one half, as in [`auc_delong`]. `None` unless both classes are present.
pub fn auc_delong_paired(positives: &[[f64; 2]], negatives: &[[f64; 2]]) -> Option<PairedAuc> {
    let column = |rows: &[[f64; 2]], k: usize| -> Vec<f64> { rows.iter().map(|r| r[k]).collect() };
    let a = components(&column(positives, 0), &column(negatives, 0))?;
    let b = components(&column(positives, 1), &column(negatives, 1))?;
    let (mf, nf) = (positives.len() as f64, negatives.len() as f64);
    let s = |x10: &[f64], y10: &[f64], x01: &[f64], y01: &[f64]| -> Option<f64> {
        Some(sample_covariance(x10, y10)? / mf + sample_covariance(x01, y01)? / nf)
    };
    Some(PairedAuc {
        baseline: Auc { auc: a.auc, variance: s(&a.v10, &a.v10, &a.v01, &a.v01) },
        candidate: Auc { auc: b.auc, variance: s(&b.v10, &b.v10, &b.v01, &b.v01) },
        covariance: s(&a.v10, &b.v10, &a.v01, &b.v01),
        positives: positives.len() as u64,
        negatives: negatives.len() as u64,
    })
}

/// Candidate − baseline AUC on the same rows: DeLong's paired z-test. `None` without a variance.
pub fn auc_difference_paired(p: PairedAuc) -> Option<ZTest> {
    let var = p.difference_variance()?;
    Some(z_test(p.candidate.auc - p.baseline.auc, var))
}

/// A two-sided `1 - alpha` normal interval around a difference with variance `variance` (not clipped: an AUC
/// difference lies in [-1, 1] and these intervals stay well inside it when they matter).
pub fn difference_interval(difference: f64, variance: f64, alpha: f64) -> [f64; 2] {
    let half = normal_quantile(1.0 - alpha / 2.0) * variance.max(0.0).sqrt();
    [difference - half, difference + half]
}

/// A two-sided `1 - alpha` normal interval around `auc`, clipped to [0, 1].
pub fn auc_interval(a: Auc, alpha: f64) -> Option<[f64; 2]> {
    let se = a.variance?.max(0.0).sqrt();
    let z = normal_quantile(1.0 - alpha / 2.0);
    Some([(a.auc - z * se).max(0.0), (a.auc + z * se).min(1.0)])
}

/// A two-sided z-test of a difference between two independent estimates.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ZTest {
    /// Candidate minus baseline.
    pub difference: f64,
    pub z: f64,
    pub p_value: f64,
}

/// Candidate − baseline AUC; the samples are independent (different requests), so the variances add.
pub fn auc_difference(baseline: Auc, candidate: Auc) -> Option<ZTest> {
    let var = baseline.variance? + candidate.variance?;
    let difference = candidate.auc - baseline.auc;
    Some(z_test(difference, var))
}

fn z_test(difference: f64, variance: f64) -> ZTest {
    if variance <= 0.0 || !variance.is_finite() {
        // no spread at all: only an exact zero difference is "no difference"
        let (z, p_value) = if difference == 0.0 { (0.0, 1.0) } else { (f64::INFINITY.copysign(difference), 0.0) };
        return ZTest { difference, z, p_value };
    }
    let z = difference / variance.sqrt();
    ZTest { difference, z, p_value: two_sided_p(z) }
}

/// P(|Z| ≥ |z|) for a standard normal Z.
pub fn two_sided_p(z: f64) -> f64 {
    libm::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// Φ(x), the standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Φ⁻¹(p): Acklam's rational approximation refined by one Halley step on `erfc`, good to ~1e-15.
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let low = 0.02425;
    let x = if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Wilson's score interval for `k` of `n` at normal quantile `z`: unlike the Wald interval it has width with
/// zero events (0 of 300 is not "exactly 0%"), which is what keeps thin data from promoting. The counts may be
/// fractional (a sample scaled up to ask how much more data a bound needs). `None` for `n = 0`.
pub fn wilson(k: f64, nf: f64, z: f64) -> Option<[f64; 2]> {
    if nf <= 0.0 {
        return None;
    }
    if z.is_infinite() {
        return Some([0.0, 1.0]);
    }
    let p = k / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z / denom * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    Some([(center - half).max(0.0), (center + half).min(1.0)])
}

/// One-sided confidence bounds on how much worse the candidate is (`worse_by`): `lower` at quantile `z_lower`,
/// `upper` at `z_upper`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bounds {
    pub worse_by: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Newcombe's hybrid score bounds (his method 10) on candidate − baseline proportions, from the Wilson
/// intervals of each side; `None` without requests on either side.
pub fn newcombe(base: (u64, u64), cand: (u64, u64), z_lower: f64, z_upper: f64) -> Option<Bounds> {
    let f = |(k, n): (u64, u64)| (k as f64, n as f64);
    newcombe_scaled(f(base), f(cand), 1.0, z_lower, z_upper)
}

/// [`newcombe`] as if both samples were `scale` times as large at the same rates.
pub fn newcombe_scaled(base: (f64, f64), cand: (f64, f64), scale: f64, z_lower: f64, z_upper: f64) -> Option<Bounds> {
    let (base, cand) = ((base.0 * scale, base.1 * scale), (cand.0 * scale, cand.1 * scale));
    let (pb, pc) = (base.0 / base.1.max(1e-300), cand.0 / cand.1.max(1e-300));
    let [_, ub_lo] = wilson(base.0, base.1, z_lower)?;
    let [lc_lo, _] = wilson(cand.0, cand.1, z_lower)?;
    let [lb_hi, _] = wilson(base.0, base.1, z_upper)?;
    let [_, uc_hi] = wilson(cand.0, cand.1, z_upper)?;
    let d = pc - pb;
    Some(Bounds {
        worse_by: d,
        lower: d - ((pc - lc_lo).powi(2) + (ub_lo - pb).powi(2)).sqrt(),
        upper: d + ((uc_hi - pc).powi(2) + (pb - lb_hi).powi(2)).sqrt(),
    })
}

/// Normal bounds `worse_by ± z · se`; an infinite `z` (no α left to spend) gives an infinite bound.
pub fn normal_bounds(worse_by: f64, se: f64, z_lower: f64, z_upper: f64) -> Bounds {
    let spread = |z: f64| if z.is_infinite() { f64::INFINITY } else { z * se };
    Bounds { worse_by, lower: worse_by - spread(z_lower), upper: worse_by + spread(z_upper) }
}

/// The smallest factor (at least 1, at most 10⁶) by which both samples must grow for `upper_at(factor)`, a bound
/// that shrinks as they grow, to fall below `margin`; `None` when no growth gets it there.
pub fn growth_needed(upper_at: impl Fn(f64) -> f64, margin: f64) -> Option<f64> {
    if upper_at(1.0) < margin {
        return Some(1.0);
    }
    let mut hi = 2.0;
    while upper_at(hi) >= margin {
        hi *= 2.0;
        if hi > 1e6 {
            return None;
        }
    }
    let mut lo = hi / 2.0;
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if upper_at(mid) < margin {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// A sample's size, mean and variance (ddof 1): enough for a difference of means between independent samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    pub variance: f64,
}

impl Moments {
    /// `None` with fewer than two values.
    pub fn of(values: impl Iterator<Item = f64>) -> Option<Moments> {
        let x: Vec<f64> = values.collect();
        let variance = sample_variance(&x)?;
        Some(Moments { n: x.len() as u64, mean: x.iter().sum::<f64>() / x.len() as f64, variance })
    }
}

/// Welch's standard error of the difference of two independent means.
pub fn welch_se(a: Moments, b: Moments) -> f64 {
    (a.variance / a.n as f64 + b.variance / b.n as f64).sqrt()
}

/// Per-row log loss, clipped as [`log_loss`] clips.
pub fn log_loss_row(p: f64, y: bool) -> f64 {
    let p = p.clamp(LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON);
    if y {
        -p.ln()
    } else {
        -(1.0 - p).ln()
    }
}

/// Per-row Brier score.
pub fn brier_row(p: f64, y: bool) -> f64 {
    (p - if y { 1.0 } else { 0.0 }).powi(2)
}

/// The Lan–DeMets O'Brien–Fleming-type spending function: how much of a one-sided `alpha` may be spent by
/// information fraction `t` in (0, 1], `2 − 2Φ(z_{1−α/2} / √t)`; it is `alpha` at `t = 1`.
pub fn obrien_fleming_spent(alpha: f64, t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let t = t.min(1.0);
    2.0 - 2.0 * normal_cdf(normal_quantile(1.0 - alpha / 2.0) / t.sqrt())
}

/// The α look `k` of `planned` may use: the increment of the spending function over the look fractions
/// `k / planned`. The increments add up to `alpha`, so by the union bound the chance that any look wrongly
/// clears a bound is at most `alpha`; looks past the plan get nothing.
pub fn alpha_for_look(alpha: f64, k: u32, planned: u32) -> f64 {
    if k == 0 || planned == 0 || k > planned {
        return 0.0;
    }
    let t = |i: u32| f64::from(i) / f64::from(planned);
    (obrien_fleming_spent(alpha, t(k)) - obrien_fleming_spent(alpha, t(k - 1))).max(0.0)
}

/// Proportions below this count as this in PSI, so an empty bin adds a large but finite term.
pub const PSI_EPSILON: f64 = 1e-4;

/// Population stability index of `actual` (candidate) against `expected` (baseline) over the same bins:
/// Σ (a − e) · ln(a / e) on proportions. `None` when either side is empty.
pub fn psi(expected: &[u64], actual: &[u64]) -> Option<f64> {
    let (te, ta) = (expected.iter().sum::<u64>(), actual.iter().sum::<u64>());
    if te == 0 || ta == 0 || expected.len() != actual.len() {
        return None;
    }
    Some(
        expected
            .iter()
            .zip(actual)
            .map(|(&e, &a)| {
                let e = (e as f64 / te as f64).max(PSI_EPSILON);
                let a = (a as f64 / ta as f64).max(PSI_EPSILON);
                (a - e) * (a / e).ln()
            })
            .sum(),
    )
}

/// PSI of `actual` against `expected` (ascending) over `bins` bins cut at `expected`'s quantiles: a regressor's
/// values have no fixed range, so the baseline's own deciles make the bins. A value on a cut falls in the lower
/// bin; repeated cuts (many equal values) merge their bins. `None` when either side is empty.
pub fn psi_by_quantiles(expected: &[f64], actual: &[f64], bins: usize) -> Option<f64> {
    let mut cuts: Vec<f64> = (1..bins).filter_map(|k| quantile_sorted(expected, k as f64 / bins as f64)).collect();
    cuts.dedup();
    let histogram = |xs: &[f64]| {
        let mut h = vec![0u64; cuts.len() + 1];
        for x in xs {
            h[cuts.partition_point(|c| c < x)] += 1;
        }
        h
    };
    psi(&histogram(expected), &histogram(actual))
}

/// Probabilities are clipped to [ε, 1 − ε] in log loss, so a confident miss costs ~34.5 nats, not infinity
/// (scikit-learn clips the same way, with float64's machine epsilon).
pub const LOG_LOSS_EPSILON: f64 = f64::EPSILON;

/// Mean binary cross-entropy of `(probability of the positive class, is positive)` pairs.
pub fn log_loss(pairs: &[(f64, bool)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let sum: f64 = pairs.iter().map(|&(p, y)| log_loss_row(p, y)).sum();
    Some(sum / pairs.len() as f64)
}

/// Mean squared difference between the positive-class probability and the outcome.
pub fn brier(pairs: &[(f64, bool)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    Some(pairs.iter().map(|&(p, y)| brier_row(p, y)).sum::<f64>() / pairs.len() as f64)
}

/// ROC curve points (false positive rate, true positive rate) from (score, is positive) pairs, one point per
/// distinct score from the highest down, starting at (0, 0) and ending at (1, 1). Empty unless both classes occur.
pub fn roc_curve(pairs: &[(f64, bool)]) -> Vec<[f64; 2]> {
    let pos = pairs.iter().filter(|p| p.1).count() as f64;
    let neg = pairs.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return vec![];
    }
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = vec![[0.0, 0.0]];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (i, &(score, y)) in sorted.iter().enumerate() {
        if y {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        if sorted.get(i + 1).is_none_or(|next| next.0 != score) {
            out.push([fp / neg, tp / pos]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} != {b} (tolerance {tol})");
    }

    // y = [1,0,1,1,0,0,1,0,1,0]; s = [.9,.3,.7,.7,.4,.7,.2,.1,.8,.5]: a tie across classes at 0.7
    const Y: [bool; 10] = [true, false, true, true, false, false, true, false, true, false];
    const S: [f64; 10] = [0.9, 0.3, 0.7, 0.7, 0.4, 0.7, 0.2, 0.1, 0.8, 0.5];

    fn split() -> (Vec<f64>, Vec<f64>) {
        let pos = S.iter().zip(Y).filter(|p| p.1).map(|p| *p.0).collect();
        let neg = S.iter().zip(Y).filter(|p| !p.1).map(|p| *p.0).collect();
        (pos, neg)
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // np.percentile([5, 1, 4, 2, 3, 10, 7], [0, 50, 90, 99, 100])
        let mut x = vec![5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 7.0];
        x.sort_by(f64::total_cmp);
        let got: Vec<f64> = [0.0, 0.5, 0.9, 0.99, 1.0].iter().map(|&q| quantile_sorted(&x, q).unwrap()).collect();
        for (g, e) in got.iter().zip([1.0, 4.0, 8.2, 9.82, 10.0]) {
            close(*g, e, 1e-12);
        }
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[3.5], 0.99), Some(3.5));
    }

    #[test]
    fn auc_with_ties_matches_roc_auc_score_and_delong_variance() {
        // roc_auc_score(Y, S) = 0.8; DeLong variance from the structural components (numpy, ddof=1)
        let (pos, neg) = split();
        let a = auc_delong(&pos, &neg).unwrap();
        close(a.auc, 0.8, 1e-12);
        close(a.variance.unwrap(), 0.027, 1e-12);
    }

    #[test]
    fn auc_needs_both_classes_and_variance_needs_two_of_each() {
        assert_eq!(auc_delong(&[0.3], &[]), None);
        let a = auc_delong(&[0.9], &[0.1, 0.2]).unwrap();
        assert_eq!((a.auc, a.variance), (1.0, None));
    }

    #[test]
    fn auc_interval_and_difference_test() {
        let a = Auc { auc: 0.8, variance: Some(0.027) };
        let ci = auc_interval(a, 0.05).unwrap();
        // 0.8 ± 1.959963984540054 * sqrt(0.027), the upper end clipped to 1
        close(ci[0], 0.8 - 1.959963984540054 * 0.027f64.sqrt(), 1e-12);
        assert_eq!(ci[1], 1.0);
        let b = Auc { auc: 0.70, variance: Some(0.0004) };
        let c = Auc { auc: 0.75, variance: Some(0.0005) };
        let t = auc_difference(b, c).unwrap();
        // scipy.stats.norm.sf(0.05 / sqrt(0.0009)) * 2
        close(t.z, 1.6666666666666667, 1e-12);
        close(t.p_value, 0.0955807045456294, 1e-12);
    }

    // y = [1,0,1,1,0,0,1,0,1,0,1,0]; a (baseline) and b (candidate) on the same rows, with ties within a model
    // and across classes
    const PY: [bool; 12] = [true, false, true, true, false, false, true, false, true, false, true, false];
    const PA: [f64; 12] = [0.9, 0.3, 0.7, 0.7, 0.4, 0.7, 0.2, 0.1, 0.8, 0.5, 0.6, 0.6];
    const PB: [f64; 12] = [0.8, 0.4, 0.6, 0.9, 0.4, 0.2, 0.5, 0.3, 0.8, 0.6, 0.5, 0.7];

    fn paired_split(a: &[f64], b: &[f64]) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
        let rows = || a.iter().zip(b).zip(PY).map(|((a, b), y)| ([*a, *b], y));
        (rows().filter(|r| r.1).map(|r| r.0).collect(), rows().filter(|r| !r.1).map(|r| r.0).collect())
    }

    #[test]
    fn paired_delong_matches_numpy_from_the_pairwise_kernel() {
        // numpy, from the O(m n) kernel (a different route from the midranks):
        //   psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]) per model;
        //   v10, v01 = psi.mean(1), psi.mean(0);
        //   S = np.cov([v10a, v10b]) / m + np.cov([v01a, v01b]) / n; var = S[0,0] + S[1,1] - 2 S[0,1];
        //   z = (auc_b - auc_a) / sqrt(var); p = 2 norm.sf(|z|); interval d ± norm.ppf(0.975) sqrt(var)
        // roc_auc_score(y, a) = 0.7916666666666666, roc_auc_score(y, b) = 0.8472222222222222
        let (pos, neg) = paired_split(&PA, &PB);
        let p = auc_delong_paired(&pos, &neg).unwrap();
        close(p.baseline.auc, 0.7916666666666666, 1e-12);
        close(p.candidate.auc, 0.8472222222222222, 1e-12);
        close(p.baseline.variance.unwrap(), 0.021527777777777785, 1e-12);
        close(p.candidate.variance.unwrap(), 0.014274691358024692, 1e-12);
        close(p.covariance.unwrap(), 0.006481481481481483, 1e-12);
        close(p.difference_variance().unwrap(), 0.02283950617283951, 1e-12);
        assert_eq!((p.positives, p.negatives), (6, 6));
        let t = auc_difference_paired(p).unwrap();
        close(t.difference, 0.05555555555555558, 1e-12);
        close(t.z, 0.36760731104690403, 1e-9);
        close(t.p_value, 0.7131660625710623, 1e-9);
        let [lo, hi] = difference_interval(t.difference, p.difference_variance().unwrap(), 0.05);
        close(lo, -0.2406488037100573, 1e-9);
        close(hi, 0.3517599148211685, 1e-9);
        // each model alone is the unpaired DeLong
        let alone = |k: usize| {
            let col = |rows: &[[f64; 2]]| rows.iter().map(|r| r[k]).collect::<Vec<f64>>();
            auc_delong(&col(&pos), &col(&neg)).unwrap()
        };
        assert_eq!((alone(0), alone(1)), (p.baseline, p.candidate));
    }

    #[test]
    fn paired_delong_is_antisymmetric_and_a_model_against_itself_has_no_spread() {
        let (pos, neg) = paired_split(&PA, &PB);
        let swap = |rows: &[[f64; 2]]| rows.iter().map(|r| [r[1], r[0]]).collect::<Vec<_>>();
        let p = auc_delong_paired(&pos, &neg).unwrap();
        let q = auc_delong_paired(&swap(&pos), &swap(&neg)).unwrap();
        close(q.difference_variance().unwrap(), p.difference_variance().unwrap(), 1e-15);
        close(auc_difference_paired(q).unwrap().z, -auc_difference_paired(p).unwrap().z, 1e-12);
        let (pos, neg) = paired_split(&PA, &PA);
        let same = auc_delong_paired(&pos, &neg).unwrap();
        close(same.difference_variance().unwrap(), 0.0, 1e-15);
        let t = auc_difference_paired(same).unwrap();
        assert_eq!((t.difference, t.z, t.p_value), (0.0, 0.0, 1.0));
        // one class missing, or one row of a class: no AUC, or no variance
        assert_eq!(auc_delong_paired(&pos, &[]), None);
        let one = auc_delong_paired(&pos[..1], &neg).unwrap();
        assert_eq!((one.covariance, one.difference_variance(), auc_difference_paired(one)), (None, None, None));
    }

    #[test]
    fn normal_tails_and_quantiles_match_scipy() {
        // scipy.stats.norm.ppf(0.975), ppf(0.001), cdf(1.2345)
        close(normal_quantile(0.975), 1.959963984540054, 1e-13);
        close(normal_quantile(0.001), -3.090232306167813, 1e-12);
        close(normal_quantile(0.5), 0.0, 1e-15);
        close(normal_cdf(1.2345), 0.8914916766373298, 1e-14);
        close(two_sided_p(-1.959963984540054), 0.05, 1e-14);
    }

    #[test]
    fn psi_with_an_empty_bin_uses_epsilon() {
        // b = [50, 30, 20, 0] / 100, c = [40, 30, 20, 10] / 100, zero replaced by 1e-4:
        // sum((c - b) * log(c / b))
        let v = psi(&[50, 30, 20, 0], &[40, 30, 20, 10]).unwrap();
        close(v, (0.4 - 0.5) * (0.4f64 / 0.5).ln() + (0.1 - 1e-4) * (0.1f64 / 1e-4).ln(), 1e-15);
        close(v, 0.7123991075017365, 1e-12);
        assert_eq!(psi(&[1, 2], &[1, 2]), Some(0.0));
        assert_eq!(psi(&[0, 0], &[1, 2]), None);
    }

    #[test]
    fn psi_by_quantiles_cuts_at_the_baselines_deciles() {
        // 0..100: cuts at 9.9, 19.8, …; the same values are stable, values all past the last cut are not
        let b: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(psi_by_quantiles(&b, &b, 10), Some(0.0));
        let shifted: Vec<f64> = (0..100).map(|x| f64::from(x) + 1000.0).collect();
        // every value in the last bin: 0.1 against 1.0 there, 0.1 against ε in the nine others
        let want = (1.0 - 0.1) * (1.0f64 / 0.1).ln() + 9.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln();
        close(psi_by_quantiles(&b, &shifted, 10).unwrap(), want, 1e-12);
        // a constant baseline has one cut: two bins
        let want = (0.5 - 1.0) * 0.5f64.ln() + (0.5 - 1e-4) * (0.5f64 / 1e-4).ln();
        close(psi_by_quantiles(&[2.0; 5], &[2.0, 3.0], 10).unwrap(), want, 1e-12);
        assert_eq!(psi_by_quantiles(&[], &[1.0], 10), None);
    }

    #[test]
    fn log_loss_and_brier_match_sklearn() {
        // log_loss(Y, S), brier_score_loss(Y, S)
        let pairs: Vec<(f64, bool)> = S.iter().copied().zip(Y).collect();
        close(log_loss(&pairs).unwrap(), 0.5521272935532032, 1e-12);
        close(brier(&pairs).unwrap(), 0.187, 1e-12);
        // a confident miss is clipped, not infinite
        assert!(log_loss(&[(0.0, true)]).unwrap() < 40.0);
        assert_eq!(log_loss(&[]), None);
    }

    #[test]
    fn roc_curve_matches_sklearn_points() {
        // sklearn.metrics.roc_curve(Y, S, drop_intermediate=False)
        let pairs: Vec<(f64, bool)> = S.iter().copied().zip(Y).collect();
        let roc = roc_curve(&pairs);
        let expected = [
            [0.0, 0.0],
            [0.0, 0.2],
            [0.0, 0.4],
            [0.2, 0.8],
            [0.4, 0.8],
            [0.6, 0.8],
            [0.8, 0.8],
            [0.8, 1.0],
            [1.0, 1.0],
        ];
        assert_eq!(roc.len(), expected.len(), "{roc:?}");
        for (g, e) in roc.iter().zip(expected) {
            close(g[0], e[0], 1e-12);
            close(g[1], e[1], 1e-12);
        }
    }

    #[test]
    fn wilson_intervals_match_numpy() {
        // z = norm.ppf(0.95); Wilson by its formula in numpy
        let z = 1.6448536269514722;
        let [lo, hi] = wilson(0.0, 300.0, z).unwrap();
        close(lo, 0.0, 1e-15);
        close(hi, 0.008937872175128179, 1e-12);
        let [lo, hi] = wilson(7.0, 250.0, z).unwrap();
        close(lo, 0.015251144207328121, 1e-12);
        close(hi, 0.05085561081575675, 1e-12);
        assert_eq!(wilson(1.0, 0.0, z), None);
        assert_eq!(wilson(3.0, 10.0, f64::INFINITY), Some([0.0, 1.0]));
    }

    #[test]
    fn newcombe_bounds_match_numpy() {
        // baseline 3/900, candidate 12/400, lower at norm.ppf(0.95), upper at norm.ppf(1 - 0.0123)
        let b = newcombe((3, 900), (12, 400), normal_quantile(0.95), normal_quantile(1.0 - 0.0123)).unwrap();
        close(b.worse_by, 0.026666666666666665, 1e-15);
        close(b.lower, 0.014431585592915557, 1e-9);
        close(b.upper, 0.05256762082135604, 1e-9);
        assert_eq!(newcombe((0, 0), (1, 10), 1.0, 1.0), None);
    }

    #[test]
    fn alpha_spent_per_look_matches_scipy() {
        // a(t) = 2 - 2 norm.cdf(norm.ppf(1 - 0.05/2) / sqrt(t)); increments over k/K
        close(alpha_for_look(0.05, 1, 1), 0.05, 1e-12);
        let two = [0.005574596680784305, 0.04442540331921574];
        let three = [0.0006868948682239306, 0.015687771581824217, 0.0336253335499519];
        let four = [8.857543832130332e-05, 0.005486021242463002, 0.018050524636817, 0.02637487868239874];
        for (k, want) in two.iter().enumerate() {
            close(alpha_for_look(0.05, k as u32 + 1, 2), *want, 1e-12);
        }
        for (k, want) in three.iter().enumerate() {
            close(alpha_for_look(0.05, k as u32 + 1, 3), *want, 1e-12);
        }
        for (k, want) in four.iter().enumerate() {
            close(alpha_for_look(0.05, k as u32 + 1, 4), *want, 1e-12);
        }
        let total: f64 = (1..=4).map(|k| alpha_for_look(0.05, k, 4)).sum();
        close(total, 0.05, 1e-12);
        assert_eq!((alpha_for_look(0.05, 5, 4), alpha_for_look(0.05, 0, 4)), (0.0, 0.0));
    }

    #[test]
    fn growth_needed_finds_where_a_shrinking_bound_clears_the_margin() {
        close(growth_needed(|k| 1.0 / k, 0.1).unwrap(), 10.0, 1e-9);
        assert_eq!(growth_needed(|k| 0.05 / k, 0.1), Some(1.0));
        assert_eq!(growth_needed(|_| 0.2, 0.1), None);
        // 0 errors of n on both sides: Wilson's upper end on the candidate falls below 1% near n = z^2 / 0.0099
        let z = normal_quantile(0.95);
        let k = growth_needed(|s| newcombe_scaled((0.0, 100.0), (0.0, 100.0), s, z, z).unwrap().upper, 0.01).unwrap();
        assert!((2.6..2.8).contains(&k), "{k}");
    }

    #[test]
    fn moments_and_welch() {
        // np.mean, np.var(ddof=1)
        let m = Moments::of([1.0, 2.0, 4.0].into_iter()).unwrap();
        assert_eq!((m.n, m.mean), (3, 7.0 / 3.0));
        close(m.variance, 2.333333333333333, 1e-12);
        assert_eq!(Moments::of([1.0].into_iter()), None);
        close(welch_se(m, m), (2.0 * 2.333333333333333 / 3.0f64).sqrt(), 1e-12);
        let b = normal_bounds(0.01, 0.02, 1.0, f64::INFINITY);
        assert_eq!((b.lower, b.upper), (0.01 - 0.02, f64::INFINITY));
    }
}
