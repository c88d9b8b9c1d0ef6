//! Pure statistics behind `mlambda report`: quantiles, AUC with DeLong's variance, PSI, log loss, Brier, normal tails.
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

/// AUC from the Mann–Whitney U statistic (ties count one half) and DeLong's variance, computed from midranks
/// in O(n log n) (Sun & Xu 2014). `None` unless both classes are present.
pub fn auc_delong(positives: &[f64], negatives: &[f64]) -> Option<Auc> {
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
    // structural components: V10 per positive (share of negatives it beats), V01 per negative
    let v10: Vec<f64> = (0..m).map(|i| (tz[i] - tx[i]) / nf).collect();
    let v01: Vec<f64> = (0..n).map(|j| 1.0 - (tz[m + j] - ty[j]) / mf).collect();
    let variance = match (sample_variance(&v10), sample_variance(&v01)) {
        (Some(s10), Some(s01)) => Some(s10 / mf + s01 / nf),
        _ => None,
    };
    Some(Auc { auc, variance })
}

fn sample_variance(x: &[f64]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    Some(x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (x.len() - 1) as f64)
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

/// Two-proportion z-test (pooled) of candidate − baseline error rates; `None` without requests on either side.
pub fn two_proportions(base_errors: u64, base_n: u64, cand_errors: u64, cand_n: u64) -> Option<ZTest> {
    if base_n == 0 || cand_n == 0 {
        return None;
    }
    let (n1, n2) = (base_n as f64, cand_n as f64);
    let (p1, p2) = (base_errors as f64 / n1, cand_errors as f64 / n2);
    let pooled = (base_errors + cand_errors) as f64 / (n1 + n2);
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    Some(z_test(p2 - p1, variance))
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

/// Probabilities are clipped to [ε, 1 − ε] in log loss, so a confident miss costs ~34.5 nats, not infinity
/// (scikit-learn clips the same way, with float64's machine epsilon).
pub const LOG_LOSS_EPSILON: f64 = f64::EPSILON;

/// Mean binary cross-entropy of `(probability of the positive class, is positive)` pairs.
pub fn log_loss(pairs: &[(f64, bool)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let sum: f64 = pairs
        .iter()
        .map(|&(p, y)| {
            let p = p.clamp(LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON);
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    Some(sum / pairs.len() as f64)
}

/// Mean squared difference between the positive-class probability and the outcome.
pub fn brier(pairs: &[(f64, bool)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    Some(pairs.iter().map(|&(p, y)| (p - if y { 1.0 } else { 0.0 }).powi(2)).sum::<f64>() / pairs.len() as f64)
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
    fn two_proportion_test_matches_scipy() {
        // pooled z by hand in numpy: p = 42 / 1900, se = sqrt(p (1 - p) (1/900 + 1/1000)); 2 * norm.sf(|z|)
        let t = two_proportions(12, 900, 30, 1000).unwrap();
        close(t.difference, 0.03 - 12.0 / 900.0, 1e-15);
        close(t.z, 2.4671713024192417, 1e-12);
        close(t.p_value, 0.013618518958655297, 1e-12);
        assert_eq!(two_proportions(0, 100, 0, 10).unwrap().p_value, 1.0);
        assert_eq!(two_proportions(0, 0, 1, 10), None);
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
}
