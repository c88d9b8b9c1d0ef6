//! `mlambda report` for people: a side-by-side terminal table with bar histograms, and one self-contained HTML page
//! with inline SVG charts (`svg#histogram`, `svg#latency`, `svg#roc`), no scripts and nothing fetched. A backtest
//! (`report --batch`) prints the same table of its runs' figures, the paired test and the verdict; a shadow
//! report (`report --shadow`) its pairs' agreement and differences, and on its page a scatter of the pairs
//! (`svg#scatter`) and the disagreements (`table#disagreements`).
use std::fmt::{self, Write as _};

use crate::plan::evidence::{self, p_text, thousands};
use crate::plan::predlog::BINS;
use crate::plan::report::{BatchReport, PairedTest, Report, ShadowReport, VersionReport};
use crate::plan::stats;

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), thousands)
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), evidence::pct)
}

fn auc_text(v: &VersionReport) -> String {
    match (v.auc, v.auc_ci) {
        (Some(a), Some([lo, hi])) => format!("{a:.4} [{lo:.3}, {hi:.3}]"),
        (Some(a), None) => format!("{a:.4}"),
        _ => "-".into(),
    }
}

/// A bar of `frac` of `width` cells in eighths.
fn bar(frac: f64, width: usize) -> String {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = (frac.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8) + PARTS[eighths % 8];
    let cells = eighths / 8 + usize::from(!eighths.is_multiple_of(8));
    s.push_str(&" ".repeat(width.saturating_sub(cells)));
    s
}

fn shares(h: &[u64; BINS]) -> Vec<f64> {
    let total = h.iter().sum::<u64>().max(1) as f64;
    h.iter().map(|n| *n as f64 / total).collect()
}

/// What a PSI value usually means for a model's score distribution.
pub fn psi_meaning(psi: f64) -> &'static str {
    if psi < 0.1 {
        "stable"
    } else if psi < 0.25 {
        "moderate shift"
    } else {
        "large shift"
    }
}

fn rows(r: &Report) -> Vec<(&'static str, String, String)> {
    let (b, c) = (&r.versions[0], &r.versions[1]);
    let both = |f: &dyn Fn(&VersionReport) -> String| (f(b), f(c));
    let mut out = Vec::new();
    let mut push = |label: &'static str, (x, y): (String, String)| out.push((label, x, y));
    push("model", both(&|v| v.model_version.clone().unwrap_or_else(|| "-".into())));
    if let Some(w) = r.traffic_share {
        push("traffic", (format!("{:.0}%", (1.0 - w) * 100.0), format!("{:.0}%", w * 100.0)));
    }
    push("requests", both(&|v| count(v.invocations)));
    push("logged requests", both(&|v| thousands(v.logged_requests)));
    push("rows", both(&|v| thousands(v.rows)));
    push("400 answers", both(&|v| format!("{} ({})", count(v.client_errors), pct(v.client_error_rate))));
    push(
        "failed (500s, errors)",
        both(&|v| {
            let failed = v.errors.map(|e| e + v.model_errors.unwrap_or(0)).or(v.model_errors);
            format!("{} ({})", count(failed), pct(v.error_rate))
        }),
    );
    push("throttles", both(&|v| count(v.throttles)));
    push("latency p50 ms", both(&|v| num(v.latency_ms.p50, 3)));
    push("latency p90 ms", both(&|v| num(v.latency_ms.p90, 3)));
    push("latency p99 ms", both(&|v| num(v.latency_ms.p99, 3)));
    push("positive rate", both(&|v| pct(v.positive_rate)));
    push("mean probability", both(&|v| num(v.mean_probability, 4)));
    if b.labeled.is_some() {
        push("labeled", both(&|v| count(v.labeled)));
        push("AUC [95% CI]", both(&auc_text));
        push("log loss", both(&|v| num(v.log_loss, 4)));
        push("Brier", both(&|v| num(v.brier, 4)));
        push("accuracy", both(&|v| pct(v.accuracy)));
    }
    out
}

/// Label, then one column per version; the last column is not padded.
fn write_table(f: &mut fmt::Formatter<'_>, heads: &[String], rows: &[(&str, Vec<String>)]) -> fmt::Result {
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..heads.len())
        .map(|k| rows.iter().map(|r| r.1[k].chars().count()).chain([heads[k].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |f: &mut fmt::Formatter<'_>, label: &str, cells: &[String]| {
        write!(f, "{label:w0$}")?;
        for (k, cell) in cells.iter().enumerate() {
            match k + 1 == cells.len() {
                true => write!(f, "  {cell}")?,
                false => write!(f, "  {cell:w$}", w = widths[k])?,
            }
        }
        writeln!(f)
    };
    line(f, "", heads)?;
    for (label, cells) in rows {
        line(f, label, cells)?;
    }
    Ok(())
}

/// The versions' probability histograms side by side as bars, when every one has one.
fn write_histograms(f: &mut fmt::Formatter<'_>, versions: &[&VersionReport], heads: &[String]) -> fmt::Result {
    let Some(all) = versions.iter().map(|v| v.histogram.as_ref().map(shares)).collect::<Option<Vec<_>>>() else {
        return Ok(());
    };
    let top = all.iter().flatten().copied().fold(0.0, f64::max).max(1e-9);
    let top_probability = versions.first().is_some_and(|v| v.histogram_of == Some("top_probability"));
    let what = if top_probability { "top probability" } else { "probability" };
    writeln!(f)?;
    write!(f, "{what:15}")?;
    for (k, head) in heads.iter().enumerate() {
        match k + 1 == heads.len() {
            true => writeln!(f, "  {head}")?,
            false => write!(f, "  {head:27}")?,
        }
    }
    for i in 0..BINS {
        write!(f, "{:15}", format!("{:.1}–{:.1}", i as f64 / 10.0, (i + 1) as f64 / 10.0))?;
        for s in &all {
            write!(f, "  {} {:>5.1}%", bar(s[i] / top, 20), s[i] * 100.0)?;
        }
        writeln!(f)?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, c) = (&self.versions[0], &self.versions[1]);
        writeln!(f, "{}:{}  {} → {}", self.function, self.alias, self.since, self.until)?;
        writeln!(f)?;
        let heads = [format!("baseline {}", b.version), format!("candidate {}", c.version)];
        let rows: Vec<(&str, Vec<String>)> = rows(self).into_iter().map(|(l, x, y)| (l, vec![x, y])).collect();
        write_table(f, &heads, &rows)?;
        write_histograms(f, &[b, c], &heads)?;
        if b.class_shares.is_some() && b.histogram_of == Some("top_probability") {
            writeln!(f)?;
            let empty = Default::default();
            let (xb, xc) = (b.class_shares.as_ref().unwrap_or(&empty), c.class_shares.as_ref().unwrap_or(&empty));
            let classes: std::collections::BTreeSet<&String> = xb.keys().chain(xc.keys()).collect();
            writeln!(f, "{:15}  {:27}  {}", "class", heads[0], heads[1])?;
            for k in classes {
                let (x, y) = (xb.get(k).copied().unwrap_or(0.0), xc.get(k).copied().unwrap_or(0.0));
                writeln!(f, "{k:15}  {} {:>5.1}%  {} {:>5.1}%", bar(x, 20), x * 100.0, bar(y, 20), y * 100.0)?;
            }
        }
        writeln!(f)?;
        match self.psi {
            Some(p) => writeln!(f, "PSI {p:.4} ({}), candidate against baseline", psi_meaning(p))?,
            None => writeln!(f, "PSI -: a version has no scored rows")?,
        }
        if let Some(t) = &self.auc_difference {
            writeln!(f, "AUC difference {:+.4} (z = {:.2}, {})", t.difference, t.z, p_text(t.p_value))?;
        }
        if !self.other_versions.is_empty() {
            writeln!(f, "other versions in the log: {}", self.other_versions.join(", "))?;
        }
        for v in &self.versions {
            for e in &v.top_errors {
                writeln!(
                    f,
                    "version {} answered {} {} ×{}: {}",
                    v.version,
                    e.status,
                    e.error_type,
                    thousands(e.count),
                    e.reason
                )?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "verdict: {}",
            serde_json::to_value(self.verdict).ok().and_then(|v| v.as_str().map(str::to_uppercase)).unwrap_or_default()
        )?;
        for r in &self.reasons {
            writeln!(f, "  - {r}")?;
        }
        writeln!(
            f,
            "look {} of {} planned: promote bounds at α {:.4} of the rollout's {} ({} spending)",
            self.look.index, self.look.planned, self.look.alpha, self.look.alpha_total, self.look.spending
        )?;
        Ok(())
    }
}

/// A backtest's table: what a batch run's rows say, without the live report's requests and latencies.
fn batch_rows(versions: &[&VersionReport]) -> Vec<(&'static str, Vec<String>)> {
    let all = |f: &dyn Fn(&VersionReport) -> String| versions.iter().map(|v| f(v)).collect::<Vec<_>>();
    let mut out = vec![
        ("model", all(&|v| v.model_version.clone().unwrap_or_else(|| "-".into()))),
        ("rows in", all(&|v| thousands(v.requests))),
        ("scored", all(&|v| thousands(v.rows))),
        ("refused (400s)", all(&|v| format!("{} ({})", count(v.client_errors), pct(v.client_error_rate)))),
        ("failed (500s)", all(&|v| format!("{} ({})", count(v.model_errors), pct(v.error_rate)))),
        ("positive rate", all(&|v| pct(v.positive_rate))),
        ("mean probability", all(&|v| num(v.mean_probability, 4))),
    ];
    if versions.first().is_some_and(|v| v.labeled.is_some()) {
        out.push(("labeled", all(&|v| count(v.labeled))));
        out.push(("AUC [95% CI]", all(&auc_text)));
        out.push(("log loss", all(&|v| num(v.log_loss, 4))));
        out.push(("Brier", all(&|v| num(v.brier, 4))));
        out.push(("accuracy", all(&|v| pct(v.accuracy))));
    }
    out
}

/// `paired on 18,000 rows (7,912 positive): AUC -0.0712 [95% CI -0.0801, -0.0623], z = -15.62, p < 0.001`.
fn paired_text(t: &PairedTest) -> String {
    let mut s = format!("paired on {} rows ({} positive)", thousands(t.rows), thousands(t.positives));
    match (t.difference, t.interval, t.z, t.p_value) {
        (Some(d), Some([lo, hi]), Some(z), Some(p)) => {
            let level = t.confidence * 100.0;
            s += &format!(": AUC difference {d:+.4} [{level:.0}% CI {lo:+.4}, {hi:+.4}], z = {z:.2}, {}", p_text(p));
            if let Some(r) = t.correlation {
                s += &format!(" (correlation {r:.2})");
            }
        }
        (Some(d), ..) => s += &format!(": AUC difference {d:+.4}, too few rows of one outcome for a variance"),
        _ => s += ": no AUC without rows of both outcomes",
    }
    if t.unpaired_baseline + t.unpaired_candidate > 0 {
        s += &format!(
            "; {} baseline and {} candidate labeled rows had no partner",
            thousands(t.unpaired_baseline),
            thousands(t.unpaired_candidate)
        );
    }
    s
}

impl fmt::Display for BatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run_of = |v: &str| self.runs.iter().find(|r| r.version == v).map_or("-", |r| r.address.as_str());
        let (b, c) = (&self.versions[0], self.versions.get(1));
        match c {
            Some(c) => writeln!(
                f,
                "{} backtest: version {} ({}) against baseline {} ({})",
                self.function,
                c.version,
                run_of(&c.version),
                b.version,
                run_of(&b.version)
            )?,
            None => writeln!(f, "{} batch run {} by version {}", self.function, run_of(&b.version), b.version)?,
        }
        writeln!(f)?;
        let versions: Vec<&VersionReport> = self.versions.iter().collect();
        let heads: Vec<String> = match c {
            Some(c) => vec![format!("baseline {}", b.version), format!("candidate {}", c.version)],
            None => vec![format!("version {}", b.version)],
        };
        write_table(f, &heads, &batch_rows(&versions))?;
        write_histograms(f, &versions, &heads)?;
        if c.is_none() {
            return Ok(());
        }
        writeln!(f)?;
        match self.psi {
            Some(p) => writeln!(f, "PSI {p:.4} ({}), candidate against baseline on the same input", psi_meaning(p))?,
            None => writeln!(f, "PSI -: a version has no scored rows")?,
        }
        if let Some(t) = &self.paired {
            writeln!(f, "{}", paired_text(t))?;
        }
        if let Some(v) = self.verdict {
            writeln!(f)?;
            writeln!(f, "backtest verdict: {}", v.as_str().to_uppercase())?;
            for r in &self.reasons {
                writeln!(f, "  - {r}")?;
            }
            let bounds = format!("one-sided bounds at α {}, paired tests, one look", self.thresholds.alpha);
            writeln!(f, "{bounds}; recorded in .mlambda/state.json, where `mlambda rollout` reads it")?;
        }
        Ok(())
    }
}

/// How a shadow's |Δ| reads: `|Δ probability|`.
fn delta_name(of: Option<&str>) -> &'static str {
    match of {
        Some("class_probabilities") => "|Δ class probability|",
        Some("value") => "|Δ value|",
        _ => "|Δ probability|",
    }
}

/// A prediction and its probability: `1 (0.8123)`.
fn answer_text(label: Option<&str>, p: Option<f64>) -> String {
    match (label, p) {
        (Some(l), Some(p)) => format!("{l} ({p:.4})"),
        (Some(l), None) => l.to_string(),
        (None, Some(p)) => format!("{p:.4}"),
        (None, None) => "-".into(),
    }
}

fn shadow_rows(r: &ShadowReport) -> Vec<(&'static str, Vec<String>)> {
    let (bl, cl) = (&r.baseline_latency_ms, &r.candidate_latency_ms);
    let mut out = vec![
        (
            "model",
            vec![r.baseline_model.clone().unwrap_or("-".into()), r.candidate_model.clone().unwrap_or("-".into())],
        ),
        ("requests (copies)", vec![thousands(r.baseline_requests), thousands(r.candidate_requests)]),
        ("latency p50 ms", vec![num(bl.p50, 3), num(cl.p50, 3)]),
        ("latency p90 ms", vec![num(bl.p90, 3), num(cl.p90, 3)]),
        ("latency p99 ms", vec![num(bl.p99, 3), num(cl.p99, 3)]),
        (
            "failed answers",
            vec![
                "-".into(),
                format!(
                    "{} ({})",
                    thousands(r.shadow_errors.answer_failures),
                    pct(r.shadow_errors.answer_failure_rate)
                ),
            ],
        ),
    ];
    if let Some(t) = &r.paired {
        out.push(("AUC (paired rows)", vec![num(t.baseline_auc, 4), num(t.candidate_auc, 4)]));
        if let Some(l) = &t.calibration {
            let label = match r.thresholds.calibration {
                evidence::Calibration::Brier => "Brier (paired rows)",
                evidence::Calibration::LogLoss => "log loss (paired rows)",
            };
            out.push((label, vec![format!("{:.4}", l.baseline), format!("{:.4}", l.candidate)]));
        }
    }
    out
}

/// The disagreements as a table: id, row, both answers and |Δ|.
fn write_disagreements(f: &mut fmt::Formatter<'_>, r: &ShadowReport) -> fmt::Result {
    let regressor = r.delta_of == Some("value");
    writeln!(f, "{}", if regressor { "largest differences" } else { "largest disagreements" })?;
    let heads = vec![
        "id".to_string(),
        "row".to_string(),
        format!("baseline {}", r.baseline),
        format!("candidate {}", r.candidate),
        delta_name(r.delta_of).to_string(),
    ];
    let rows: Vec<(&str, Vec<String>)> = r
        .disagreements
        .iter()
        .map(|d| {
            let cells = vec![
                d.id.clone().unwrap_or_else(|| "-".into()),
                d.row.to_string(),
                answer_text(d.baseline.as_deref(), d.baseline_probability),
                answer_text(d.candidate.as_deref(), d.candidate_probability),
                format!("{:.4}", d.delta),
            ];
            ("", cells)
        })
        .collect();
    write_table(f, &heads, &rows)
}

impl fmt::Display for ShadowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{} shadow: version {} answered copies of version {}'s requests, {} → {}",
            self.function, self.alias, self.candidate, self.baseline, self.since, self.until
        )?;
        writeln!(f)?;
        writeln!(f, "pairs: {} rows both answered, paired on (correlation id, row)", thousands(self.pairs))?;
        writeln!(
            f,
            "unmatched: {} copied rows without a shadow answer ({} of them with a failed copy), {} shadow answers \
             without their primary line",
            thousands(self.primary_unmatched),
            thousands(self.primary_unmatched_with_error),
            thousands(self.shadow_unmatched)
        )?;
        if self.other_pairs + self.duplicates > 0 {
            writeln!(
                f,
                "left out: {} pairs of other versions, {} lines seen twice",
                thousands(self.other_pairs),
                thousands(self.duplicates)
            )?;
        }
        match self.agreement {
            Some(a) => writeln!(
                f,
                "label agreement: {} ({} of {} pairs differ)",
                evidence::pct(a),
                thousands(self.disagreeing),
                thousands(self.labeled_pairs)
            )?,
            None => writeln!(f, "label agreement: - (no pair carries two labels)")?,
        }
        if let Some(d) = &self.delta {
            writeln!(
                f,
                "{}: mean {:.4}, p50 {:.4}, p90 {:.4}, p99 {:.4}, max {:.4} ({} pairs)",
                delta_name(self.delta_of),
                d.mean,
                d.p50,
                d.p90,
                d.p99,
                d.max,
                thousands(d.count)
            )?;
        }
        match self.psi {
            Some(p) => writeln!(f, "PSI {p:.4} ({}), candidate against baseline on the same rows", psi_meaning(p))?,
            None => writeln!(f, "PSI -: no pair carries both scores")?,
        }
        let e = &self.shadow_errors;
        writeln!(
            f,
            "shadow errors: {} ({} the candidate could not answer, {} copies not delivered)",
            thousands(e.count),
            thousands(e.answer_failures),
            thousands(e.delivery_failures)
        )?;
        for r in &e.top_reasons {
            writeln!(f, "  {} ×{}: {}", r.side, thousands(r.count), r.reason)?;
        }
        writeln!(f)?;
        let heads = [format!("baseline {}", self.baseline), format!("candidate {}", self.candidate)];
        write_table(f, &heads, &shadow_rows(self))?;
        if let Some(t) = &self.paired {
            writeln!(f)?;
            writeln!(f, "{}", paired_text(t))?;
        }
        if !self.disagreements.is_empty() {
            writeln!(f)?;
            write_disagreements(f, self)?;
        }
        writeln!(f)?;
        writeln!(f, "shadow verdict: {}", self.verdict.as_str().to_uppercase())?;
        for r in &self.reasons {
            writeln!(f, "  - {r}")?;
        }
        let bounds = format!("one-sided bounds at α {}, paired tests, one look", self.thresholds.alpha);
        writeln!(f, "{bounds}; recorded in .mlambda/state.json, where `mlambda rollout` reads it")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const BASE_COLOR: &str = "#2f6db5";
const CAND_COLOR: &str = "#e07b1f";
const W: f64 = 560.0;
const H: f64 = 300.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 30.0;
const PAD_B: f64 = 44.0;

/// Plot coordinates for x in [x0, x1] and y in [y0, y1].
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        PAD_L + (v - self.x0) / (self.x1 - self.x0).max(1e-12) * (W - PAD_L - PAD_R)
    }
    fn y(&self, v: f64) -> f64 {
        H - PAD_B - (v - self.y0) / (self.y1 - self.y0).max(1e-12) * (H - PAD_T - PAD_B)
    }
}

fn axes(out: &mut String, fr: &Frame, xticks: &[(f64, String)], yticks: &[(f64, String)], xlabel: &str, ylabel: &str) {
    let (l, r, t, b) = (PAD_L, W - PAD_R, PAD_T, H - PAD_B);
    let _ = write!(
        out,
        r##"<g class="axes" stroke="#888" stroke-width="1"><line x1="{l}" y1="{b}" x2="{r}" y2="{b}"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}"/></g>"##
    );
    for (v, text) in xticks {
        let x = fr.x(*v);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{:.1}" stroke="#888"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            b + 4.0,
            b + 17.0,
            esc(text)
        );
    }
    for (v, text) in yticks {
        let y = fr.y(*v);
        let _ = write!(
            out,
            r##"<line x1="{l}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#e6e6e6"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            l - 6.0,
            y + 4.0,
            esc(text)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="label">{}</text><text x="14" y="{:.1}" text-anchor="middle" class="label" transform="rotate(-90 14 {:.1})">{}</text>"#,
        (l + r) / 2.0,
        H - 8.0,
        esc(xlabel),
        (t + b) / 2.0,
        (t + b) / 2.0,
        esc(ylabel)
    );
}

fn legend(out: &mut String, r: &Report) {
    let (b, c) = (&r.versions[0], &r.versions[1]);
    let _ = write!(
        out,
        r#"<g class="legend"><rect x="{0}" y="8" width="12" height="12" fill="{BASE_COLOR}"/><text x="{1}" y="18">baseline {2}</text><rect x="{3}" y="8" width="12" height="12" fill="{CAND_COLOR}"/><text x="{4}" y="18">candidate {5}</text></g>"#,
        PAD_L,
        PAD_L + 16.0,
        esc(&b.version),
        PAD_L + 150.0,
        PAD_L + 166.0,
        esc(&c.version)
    );
}

fn svg_open(id: &str, title: &str) -> String {
    format!(
        r#"<svg id="{id}" class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    )
}

fn empty_note(out: &mut String, text: &str) {
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="empty">{}</text>"#,
        W / 2.0,
        H / 2.0,
        esc(text)
    );
}

fn histogram_svg(r: &Report) -> String {
    let (b, c) = (&r.versions[0], &r.versions[1]);
    let mut out = svg_open("histogram", "probability histograms, baseline and candidate overlaid");
    let sb = b.histogram.as_ref().map(shares);
    let sc = c.histogram.as_ref().map(shares);
    let top = sb.iter().chain(&sc).flatten().copied().fold(0.0, f64::max);
    let ymax = ((top * 10.0).ceil() / 10.0).max(0.1);
    let fr = Frame { x0: 0.0, x1: 1.0, y0: 0.0, y1: ymax };
    let xt: Vec<(f64, String)> = (0..=10).map(|i| (i as f64 / 10.0, format!("{:.1}", i as f64 / 10.0))).collect();
    let yt: Vec<(f64, String)> =
        (0..=4).map(|i| (ymax * i as f64 / 4.0, format!("{:.0}%", ymax * i as f64 / 4.0 * 100.0))).collect();
    axes(&mut out, &fr, &xt, &yt, "probability", "share of rows");
    // baseline filled, candidate outlined on top, so both stay readable where they overlap
    let styles = [
        (&sb, "baseline", format!(r#"fill="{BASE_COLOR}" fill-opacity="0.45""#)),
        (
            &sc,
            "candidate",
            format!(r#"fill="{CAND_COLOR}" fill-opacity="0.15" stroke="{CAND_COLOR}" stroke-width="2""#),
        ),
    ];
    for (s, class, style) in styles {
        let Some(s) = s else { continue };
        let _ = write!(out, r#"<g class="bars {class}" {style}>"#);
        for (i, v) in s.iter().enumerate() {
            let (x0, x1) = (fr.x(i as f64 / 10.0) + 1.0, fr.x((i + 1) as f64 / 10.0) - 1.0);
            let (y, y0) = (fr.y(*v), fr.y(0.0));
            let _ = write!(
                out,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"><title>{class} {:.1}–{:.1}: {:.1}%</title></rect>"#,
                x1 - x0,
                y0 - y,
                i as f64 / 10.0,
                (i + 1) as f64 / 10.0,
                v * 100.0
            );
        }
        out.push_str("</g>");
    }
    if sb.is_none() && sc.is_none() {
        empty_note(&mut out, "no probabilities in the log");
    }
    legend(&mut out, r);
    out.push_str("</svg>");
    out
}

/// `points` quantiles of ascending data, as (value, cumulative share) pairs.
fn ecdf(sorted: &[f64], points: usize) -> Vec<(f64, f64)> {
    (0..=points)
        .filter_map(|k| {
            let q = k as f64 / points as f64;
            stats::quantile_sorted(sorted, q).map(|x| (x, q))
        })
        .collect()
}

fn nice_ticks(max: f64) -> Vec<f64> {
    let raw = max / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(raw);
    (0..).map(|i| i as f64 * step).take_while(|v| *v <= max * 1.0001).collect()
}

fn latency_svg(r: &Report) -> String {
    let mut out = svg_open("latency", "model latency distributions (cumulative), baseline and candidate");
    let hi = r.versions.iter().filter_map(|v| stats::quantile_sorted(&v.latencies, 0.999)).fold(0.0, f64::max);
    let xmax = if hi > 0.0 { hi * 1.05 } else { 1.0 };
    let fr = Frame { x0: 0.0, x1: xmax, y0: 0.0, y1: 1.0 };
    let xt: Vec<(f64, String)> =
        nice_ticks(xmax).into_iter().map(|v| (v, format!("{}", (v * 1000.0).round() / 1000.0))).collect();
    let yt: Vec<(f64, String)> = (0..=4).map(|i| (i as f64 / 4.0, format!("{}%", i * 25))).collect();
    axes(&mut out, &fr, &xt, &yt, "model latency (ms)", "requests at or below");
    for (v, color, class) in [(&r.versions[0], BASE_COLOR, "baseline"), (&r.versions[1], CAND_COLOR, "candidate")] {
        let pts = ecdf(&v.latencies, 200);
        if pts.is_empty() {
            continue;
        }
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{:.1},{:.1}", fr.x(x.min(xmax)), fr.y(*y))).collect();
        let _ = write!(
            out,
            r#"<polyline class="ecdf {class}" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        if let Some(p99) = v.latency_ms.p99 {
            let x = fr.x(p99.min(xmax));
            let _ = write!(
                out,
                r#"<line class="p99 {class}" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="4 3"><title>{class} p99 {p99:.3} ms</title></line>"#,
                fr.y(0.0),
                fr.y(1.0)
            );
        }
    }
    if r.versions.iter().all(|v| v.latencies.is_empty()) {
        empty_note(&mut out, "no latencies in the log");
    }
    legend(&mut out, r);
    out.push_str("</svg>");
    out
}

/// At most `n` points of a curve, always keeping the last.
fn thin(points: &[[f64; 2]], n: usize) -> Vec<[f64; 2]> {
    if points.len() <= n {
        return points.to_vec();
    }
    let step = points.len() as f64 / n as f64;
    let mut out: Vec<[f64; 2]> = (0..n).map(|i| points[(i as f64 * step) as usize]).collect();
    if let Some(last) = points.last() {
        out.push(*last);
    }
    out
}

fn roc_svg(r: &Report) -> String {
    let mut out = svg_open("roc", "ROC curves against the outcomes, baseline and candidate");
    let fr = Frame { x0: 0.0, x1: 1.0, y0: 0.0, y1: 1.0 };
    let t: Vec<(f64, String)> = (0..=5).map(|i| (i as f64 / 5.0, format!("{:.1}", i as f64 / 5.0))).collect();
    axes(&mut out, &fr, &t, &t, "false positive rate", "true positive rate");
    let _ = write!(
        out,
        r##"<line class="chance" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#aaa" stroke-dasharray="3 3"/>"##,
        fr.x(0.0),
        fr.y(0.0),
        fr.x(1.0),
        fr.y(1.0)
    );
    for (v, color, class) in [(&r.versions[0], BASE_COLOR, "baseline"), (&r.versions[1], CAND_COLOR, "candidate")] {
        if v.roc.is_empty() {
            continue;
        }
        let path: Vec<String> =
            thin(&v.roc, 400).iter().map(|p| format!("{:.1},{:.1}", fr.x(p[0]), fr.y(p[1]))).collect();
        let _ = write!(
            out,
            r#"<polyline class="roc {class}" fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{class} AUC {}</title></polyline>"#,
            path.join(" "),
            num(v.auc, 4)
        );
    }
    if r.versions.iter().all(|v| v.roc.is_empty()) {
        empty_note(&mut out, "no labeled rows of both outcomes");
    }
    legend(&mut out, r);
    out.push_str("</svg>");
    out
}

/// The page's head, title, window and verdict box with its reasons, up to the figures.
fn page_start(title: &str, since: &str, until: &str, verdict: &str, reasons: &[String]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; margin: 24px auto; max-width: 1180px; padding: 0 16px; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} h2 {{ font-size: 16px; margin: 28px 0 8px; }}
.window {{ color: #666; margin-bottom: 16px; }}
.verdict {{ border-radius: 6px; padding: 12px 16px; margin: 12px 0 20px; border: 1px solid; }}
.verdict.promote {{ background: #e8f6ec; border-color: #3c9a5f; }} .verdict.rollback {{ background: #fdecea; border-color: #c9372c; }}
.verdict.continue {{ background: #fff6e0; border-color: #c98a00; }}
.verdict strong {{ text-transform: uppercase; letter-spacing: .04em; }} .verdict ul {{ margin: 6px 0 0; padding-left: 20px; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 14px 4px 0; text-align: left; }} td.n {{ font-variant-numeric: tabular-nums; }}
th {{ border-bottom: 1px solid #ccc; }} .base {{ color: {BASE_COLOR}; }} .cand {{ color: {CAND_COLOR}; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 16px; }} figure {{ margin: 0; }} figcaption {{ color: #555; font-size: 13px; }}
svg.chart {{ background: #fff; border: 1px solid #ddd; border-radius: 4px; max-width: 100%; height: auto; }}
svg .tick {{ font-size: 11px; fill: #555; }} svg .label {{ font-size: 12px; fill: #333; }} svg .legend text {{ font-size: 12px; fill: #333; }}
svg .empty {{ font-size: 13px; fill: #999; }}
</style></head><body>
<h1>{}</h1><div class="window">{} → {}</div>
<div class="verdict {verdict}"><strong>{verdict}</strong><ul>"#,
        esc(title),
        esc(title),
        esc(since),
        esc(until)
    );
    for reason in reasons {
        let _ = write!(out, "<li>{}</li>", esc(reason));
    }
    out.push_str("</ul></div>\n");
    out
}

/// The whole report as one HTML page: the verdict, the table, and the charts as inline SVG.
pub fn html(r: &Report) -> String {
    let (b, c) = (&r.versions[0], &r.versions[1]);
    let title = format!("mlambda report: {}:{}, {} vs {}", r.function, r.alias, b.version, c.version);
    let mut out = page_start(&title, &r.since, &r.until, r.verdict.as_str(), &r.reasons);
    out.push_str("<table id=\"figures\"><thead><tr><th></th>");
    let _ = write!(
        out,
        r#"<th class="base">baseline {}</th><th class="cand">candidate {}</th></tr></thead><tbody>"#,
        esc(&b.version),
        esc(&c.version)
    );
    for (label, x, y) in rows(r) {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            esc(label),
            esc(&x),
            esc(&y)
        );
    }
    out.push_str("</tbody></table>\n<p>");
    match r.psi {
        Some(p) => {
            let _ = write!(out, "PSI {p:.4} ({}), candidate against baseline.", psi_meaning(p));
        }
        None => out.push_str("PSI: a version has no scored rows."),
    }
    if let Some(t) = &r.auc_difference {
        let _ = write!(out, " AUC difference {:+.4} (z = {:.2}, {}).", t.difference, t.z, p_text(t.p_value));
    }
    out.push_str("</p>\n<div class=\"charts\">\n<figure>");
    out.push_str(&histogram_svg(r));
    out.push_str(
        "<figcaption>Probability histograms (share of rows per bin), overlaid.</figcaption></figure>\n<figure>",
    );
    out.push_str(&latency_svg(r));
    out.push_str("<figcaption>Model latency per request, cumulative; dashed lines mark p99.</figcaption></figure>\n");
    if b.labeled.is_some() {
        out.push_str("<figure>");
        out.push_str(&roc_svg(r));
        out.push_str("<figcaption>ROC curves on the rows joined to outcomes.</figcaption></figure>\n");
    }
    out.push_str("</div>\n</body></html>\n");
    out
}

/// A scatter of each pair's two scores (`svg#scatter`), with the diagonal where they agree.
fn scatter_svg(r: &ShadowReport) -> String {
    let what = match r.delta_of {
        Some("value") => "value",
        Some("class_probabilities") => "top-class probability",
        _ => "probability",
    };
    let mut out = svg_open("scatter", &format!("{what} of each pair: baseline against candidate"));
    let (lo, hi) = match r.delta_of {
        Some("value") => r
            .scatter
            .iter()
            .flatten()
            .fold(None, |m: Option<(f64, f64)>, &v| Some(m.map_or((v, v), |(a, b)| (a.min(v), b.max(v)))))
            .map_or((0.0, 1.0), |(a, b)| if b > a { (a, b) } else { (a - 0.5, b + 0.5) }),
        _ => (0.0, 1.0),
    };
    let fr = Frame { x0: lo, x1: hi, y0: lo, y1: hi };
    let ticks: Vec<(f64, String)> = (0..=5)
        .map(|i| {
            let v = lo + (hi - lo) * i as f64 / 5.0;
            (v, format!("{}", (v * 100.0).round() / 100.0))
        })
        .collect();
    let (xl, yl) = (format!("baseline {} {what}", r.baseline), format!("candidate {} {what}", r.candidate));
    axes(&mut out, &fr, &ticks, &ticks, &xl, &yl);
    let _ = write!(
        out,
        r##"<line class="agree" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#aaa" stroke-dasharray="3 3"/>"##,
        fr.x(lo),
        fr.y(lo),
        fr.x(hi),
        fr.y(hi)
    );
    let _ = write!(out, r#"<g class="points" fill="{CAND_COLOR}" fill-opacity="0.35">"#);
    for [x, y] in &r.scatter {
        let _ = write!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="2"/>"#, fr.x(*x), fr.y(*y));
    }
    out.push_str("</g>");
    if r.scatter.is_empty() {
        empty_note(&mut out, "no pair carries both scores");
    }
    out.push_str("</svg>");
    out
}

/// A shadow report as one HTML page: the verdict, the figures, the scatter of the pairs and the disagreements.
pub fn shadow_html(r: &ShadowReport) -> String {
    let title = format!("mlambda shadow report: {}:{}, {} shadowing {}", r.function, r.alias, r.candidate, r.baseline);
    let mut out = page_start(&title, &r.since, &r.until, r.verdict.as_str(), &r.reasons);
    out.push_str("<table id=\"figures\"><tbody>");
    let agreement = match r.agreement {
        Some(a) => format!(
            "{} ({} of {} pairs differ)",
            evidence::pct(a),
            thousands(r.disagreeing),
            thousands(r.labeled_pairs)
        ),
        None => "-".into(),
    };
    let delta = r.delta.map_or("-".into(), |d| {
        format!("mean {:.4}, p50 {:.4}, p90 {:.4}, p99 {:.4}, max {:.4}", d.mean, d.p50, d.p90, d.p99, d.max)
    });
    let e = &r.shadow_errors;
    let summary = [
        ("pairs", thousands(r.pairs)),
        ("copied rows without a shadow answer", thousands(r.primary_unmatched)),
        ("shadow answers without their primary line", thousands(r.shadow_unmatched)),
        ("label agreement", agreement),
        (delta_name(r.delta_of), delta),
        ("PSI", r.psi.map_or("-".into(), |p| format!("{p:.4} ({})", psi_meaning(p)))),
        (
            "shadow errors",
            format!(
                "{} ({} not answered, {} not delivered)",
                thousands(e.count),
                thousands(e.answer_failures),
                thousands(e.delivery_failures)
            ),
        ),
    ];
    for (label, value) in summary {
        let _ = write!(out, r#"<tr><td>{}</td><td class="n" colspan="2">{}</td></tr>"#, esc(label), esc(&value));
    }
    let _ = write!(
        out,
        r#"<tr><th></th><th class="base">baseline {}</th><th class="cand">candidate {}</th></tr>"#,
        esc(&r.baseline),
        esc(&r.candidate)
    );
    for (label, cells) in shadow_rows(r) {
        let _ = write!(out, "<tr><td>{}</td>", esc(label));
        for c in cells {
            let _ = write!(out, r#"<td class="n">{}</td>"#, esc(&c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
    if let Some(t) = &r.paired {
        let _ = writeln!(out, "<p>{}</p>", esc(&paired_text(t)));
    }
    let note = match r.scatter.len() as u64 {
        n if n < r.pairs => format!(" ({} of {} pairs drawn, evenly spread)", thousands(n), thousands(r.pairs)),
        _ => String::new(),
    };
    let _ = write!(
        out,
        "<div class=\"charts\">\n<figure>{}<figcaption>Each pair's two scores{}; on the dashed line they agree.</figcaption></figure>\n</div>\n",
        scatter_svg(r),
        esc(&note)
    );
    let regressor = r.delta_of == Some("value");
    let _ = write!(
        out,
        "<h2>{}</h2>\n<table id=\"disagreements\"><thead><tr><th>id</th><th>row</th><th class=\"base\">baseline {}</th><th class=\"cand\">candidate {}</th><th>{}</th></tr></thead><tbody>",
        if regressor { "Largest differences" } else { "Largest disagreements (labels differ)" },
        esc(&r.baseline),
        esc(&r.candidate),
        esc(delta_name(r.delta_of))
    );
    for d in &r.disagreements {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{:.4}</td></tr>"#,
            esc(d.id.as_deref().unwrap_or("-")),
            d.row,
            esc(&answer_text(d.baseline.as_deref(), d.baseline_probability)),
            esc(&answer_text(d.candidate.as_deref(), d.candidate_probability)),
            d.delta
        );
    }
    if r.disagreements.is_empty() {
        let none = if regressor { "no pairs" } else { "none: the two versions gave every pair the same label" };
        let _ = write!(out, r#"<tr><td colspan="5">{none}</td></tr>"#);
    }
    out.push_str("</tbody></table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_in_eighths_and_pad_to_width() {
        assert_eq!(bar(0.0, 4), "    ");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5 + 1.0 / 32.0, 4), "██▏ ");
    }

    #[test]
    fn tick_steps_are_round() {
        assert_eq!(nice_ticks(10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(0.9), [0.0, 0.2, 0.4, 0.6000000000000001, 0.8]);
    }

    #[test]
    fn thinning_keeps_the_ends() {
        let pts: Vec<[f64; 2]> = (0..1000).map(|i| [i as f64, i as f64]).collect();
        let t = thin(&pts, 100);
        assert_eq!((t.len(), t[0], t[100]), (101, [0.0, 0.0], [999.0, 999.0]));
    }

    /// A shadow report of 3,000 pairs whose candidate flips the label of every seventh row.
    fn shadow_report() -> ShadowReport {
        let mut c = crate::plan::predlog::ShadowCollector::new(None);
        for i in 0..3000u32 {
            let p = f64::from(i % 100) / 100.0;
            let q = if i % 7 == 0 { 1.0 - p } else { p };
            let line = |v: &str, p: f64, shadow: bool| {
                format!(
                    r#"{{"mlambda":"prediction","request_id":"r","function_version":"{v}","id":"<c{i}>","correlation_id":"k{i}","shadow":{shadow},"row":0,"prediction":{},"probability":{p},"probabilities":{{"0":{},"1":{p}}},"latency_ms":1.0}}"#,
                    u8::from(p >= 0.5),
                    1.0 - p
                )
            };
            c.add(&line("3", p, false));
            c.add(&line("4", q, true));
        }
        let inputs = crate::plan::report::ShadowInputs {
            function: "churn".into(),
            alias: "production".into(),
            since: "2026-12-01T00:00:00Z".into(),
            until: "2026-12-02T00:00:00Z".into(),
            baseline: "3".into(),
            candidate: "4".into(),
            other_shadow_versions: vec![],
            thresholds: evidence::Thresholds::default(),
        };
        crate::plan::report::build_shadow(&inputs, c.pair("3", "4"), false, 0)
    }

    #[test]
    fn a_shadow_page_draws_at_most_2000_pairs_and_lists_20_disagreements() {
        let r = shadow_report();
        let page = shadow_html(&r);
        let scatter = &page[page.find(r#"<svg id="scatter""#).unwrap()..];
        let scatter = &scatter[..scatter.find("</svg>").unwrap()];
        assert_eq!(scatter.matches("<circle").count(), 1500, "every other pair of 3,000");
        let table = &page[page.find(r#"<table id="disagreements""#).unwrap()..];
        let table = &table[..table.find("</table>").unwrap()];
        assert_eq!(table.matches("<tr>").count(), 21, "a header and 20 rows");
        assert!(table.contains("&lt;c") && !table.contains("<c"), "ids are escaped");
        assert!(page.contains("1,500 of 3,000 pairs drawn"), "the page says the scatter is thinned");
        let text = r.to_string();
        assert!(text.contains("label agreement: ") && text.contains("|Δ probability|: mean"), "{text}");
        assert!(text.contains("largest disagreements") && text.contains("shadow verdict: "), "{text}");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"<a href="x">&"#), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }
}
