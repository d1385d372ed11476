//! Label-free calibration of a VLM's ranked emotion predictions.
//!
//! VLMs over-predict common emotions (neutral, happy) and starve rare ones (disgust, fear,
//! contempt). The corrections here estimate that bias from a batch of the model's own outputs —
//! never from ground truth — and divide it out. The evaluator fits every correction on one half
//! of a file and measures it on the other, so a reported gain is not an artefact of fitting on
//! the rows it is scored on.
//!
//! Pure Rust, no tensors: it runs the same natively and in the browser.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::labels::LabelSet;

/// Errors of the evaluator. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {reason}")]
    Malformed { line: usize, reason: String },
}

/// One prediction: the true class and the model's ranked labels mapped into the label set.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub gt: usize,
    /// In-set classes in the model's order, duplicates dropped. Labels outside the set
    /// (the model sometimes answers "Pain") are skipped: they cannot be scored against a class.
    pub ranked: Vec<usize>,
    /// The model's literal first answer; `None` when it is outside the label set. This is what
    /// published top-1 numbers count, so an out-of-set answer is simply wrong there.
    pub top1: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub labels: LabelSet,
    pub records: Vec<Record>,
}

/// Splits one CSV line into fields (RFC 4180 quoting; a quoted field may not span lines).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(_) => return Err("text after a closing quote".into()),
                    }
                }
            } else {
                field.push(c);
            }
        } else if c == ',' {
            fields.push(std::mem::take(&mut field));
            at_start = true;
            continue;
        } else if c == '"' {
            if !at_start {
                return Err("quote inside an unquoted field".into());
            }
            quoted = true;
        } else {
            field.push(c);
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Parses a predictions file: a header naming `name` and `gt` columns plus one column of
/// comma-separated ranked labels (the first column that is neither). The label set is derived
/// from the `gt` column, so any dataset's classes work without configuration.
pub fn parse_csv(text: &str) -> Result<Dataset, CalibError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let bad = |line: usize, reason: String| CalibError::Malformed { line, reason };
    let (hline, header) = lines
        .next()
        .ok_or_else(|| bad(1, "empty file, expected a header".into()))?;
    let header = split_csv_line(header).map_err(|e| bad(hline, e))?;
    let col = |want: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(want))
    };
    let name_col = col("name").ok_or_else(|| bad(hline, "header has no 'name' column".into()))?;
    let gt_col = col("gt").ok_or_else(|| bad(hline, "header has no 'gt' column".into()))?;
    let ranked_col = (0..header.len())
        .find(|&i| i != name_col && i != gt_col)
        .ok_or_else(|| bad(hline, "header has no ranked-labels column".into()))?;

    let mut raw = Vec::new();
    for (line, text) in lines {
        let f = split_csv_line(text).map_err(|e| bad(line, e))?;
        if f.len() != header.len() {
            return Err(bad(
                line,
                format!("{} fields, header has {}", f.len(), header.len()),
            ));
        }
        let gt = f[gt_col].trim().to_string();
        if gt.is_empty() {
            return Err(bad(line, "empty gt".into()));
        }
        let ranked: Vec<String> = f[ranked_col]
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        if ranked.iter().any(|s| s.is_empty()) {
            return Err(bad(line, "empty entry in ranked labels".into()));
        }
        raw.push((line, f[name_col].trim().to_string(), gt, ranked));
    }
    if raw.is_empty() {
        return Err(bad(hline, "no data rows".into()));
    }
    let labels = LabelSet::from_observed(raw.iter().map(|r| r.2.as_str()));
    let records = raw
        .into_iter()
        .map(|(_, name, gt, ranked)| {
            let gt = labels.canonical(&gt).expect("gt labels define the set");
            let top1 = labels.canonical(&ranked[0]);
            let mut in_set: Vec<usize> = Vec::new();
            for c in ranked.iter().filter_map(|l| labels.canonical(l)) {
                if !in_set.contains(&c) {
                    in_set.push(c);
                }
            }
            Record {
                name,
                gt,
                ranked: in_set,
                top1,
            }
        })
        .collect();
    Ok(Dataset { labels, records })
}

pub fn load(path: &Path) -> Result<Dataset, CalibError> {
    let text = std::fs::read_to_string(path).map_err(|source| CalibError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_csv(&text)
}

/// How a rank becomes a score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum RankRule {
    /// Score 1/(r+1) for 0-based rank r (Zipf / reciprocal rank). The default: the model gives
    /// an order, not confidences, and reciprocal rank is the customary neutral reading of an
    /// order — steep at the top (rank 1 vs 2 matters most), flat in the tail — with no
    /// parameter to tune.
    Reciprocal,
    /// Score λ^r: a constant likelihood ratio between neighbouring ranks.
    Geometric(f64),
}

/// Per-class pseudo-probabilities from a ranked list: listed classes score by rank, classes the
/// model did not list all share the score the next rank would have had (they are tied below
/// every listed class, but not impossible — a prior correction must be able to promote them).
/// Normalised to sum to 1 so that batch means are comparable to class priors.
pub fn rank_scores(ranked: &[usize], n_classes: usize, rule: RankRule) -> Vec<f64> {
    let score = |r: usize| match rule {
        RankRule::Reciprocal => 1.0 / (r as f64 + 1.0),
        RankRule::Geometric(l) => l.powi(r as i32),
    };
    let floor = score(ranked.len());
    let mut s = vec![floor; n_classes];
    for (r, &c) in ranked.iter().enumerate() {
        s[c] = score(r);
    }
    let sum: f64 = s.iter().sum();
    s.iter().map(|x| x / sum).collect()
}

/// Index of the largest value; the first wins ties.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub n: usize,
    /// Unweighted average recall (mean over classes present in gt), in percent.
    pub uar: f64,
    /// Weighted average recall = accuracy, in percent.
    pub war: f64,
    /// Recall per class in percent; `None` for a class absent from gt.
    pub recall: Vec<Option<f64>>,
    /// Fraction of predictions per class (percent).
    pub share: Vec<f64>,
    /// Fraction of predictions outside the label set (percent).
    pub share_other: f64,
    /// confusion[true][predicted]; out-of-set predictions are not in it (see `share_other`).
    pub confusion: Vec<Vec<usize>>,
}

/// Metrics of predictions `pred` (None = out-of-set answer, always wrong) against `gt`.
pub fn evaluate(gt: &[usize], pred: &[Option<usize>], n_classes: usize) -> Metrics {
    assert_eq!(gt.len(), pred.len());
    let n = gt.len();
    let mut confusion = vec![vec![0usize; n_classes]; n_classes];
    let mut support = vec![0usize; n_classes];
    let mut predicted = vec![0usize; n_classes];
    let mut other = 0;
    for (&g, &p) in gt.iter().zip(pred) {
        support[g] += 1;
        match p {
            Some(p) => {
                confusion[g][p] += 1;
                predicted[p] += 1;
            }
            None => other += 1,
        }
    }
    let recall: Vec<Option<f64>> = (0..n_classes)
        .map(|k| (support[k] > 0).then(|| 100.0 * confusion[k][k] as f64 / support[k] as f64))
        .collect();
    let present: Vec<f64> = recall.iter().flatten().copied().collect();
    let pct = |x: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * x as f64 / n as f64
        }
    };
    Metrics {
        n,
        uar: if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        },
        war: pct((0..n_classes).map(|k| confusion[k][k]).sum()),
        recall,
        share: predicted.iter().map(|&c| pct(c)).collect(),
        share_other: pct(other),
        confusion,
    }
}

/// Which half of the file a row belongs to. Decided by the parity of the FNV-1a hash of the row's
/// name: deterministic, independent of row order and of the label, and stable when rows are
/// added or removed (alternating rows would shift with every deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    Fit,
    Eval,
}

pub fn half_of(name: &str) -> Half {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if h.is_multiple_of(2) {
        Half::Fit
    } else {
        Half::Eval
    }
}

/// A label-free correction method (what to fit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Method {
    /// No correction: argmax of the rank scores.
    None,
    /// Logit adjustment `log s − τ·log m` with m the batch-mean score per class (batch
    /// calibration's estimate of the model's label bias) and fixed τ = 1, the value that makes the
    /// adjusted decision Bayes-optimal for balanced error if m were the true bias. Identical in
    /// decisions to contextual calibration's diagonal rescaling `s / m` with the batch mean as
    /// content-free estimate.
    BatchPrior,
    /// As `BatchPrior`, but τ ∈ {0, 0.1, …, 3} is chosen to maximise the entropy of the predicted
    /// class distribution on the fitting half (no labels: it only looks at the model's answers).
    BatchPriorMaxEnt,
    /// Saerens et al.-style EM: iterate q ← mean_x normalise(s(x)·q) from uniform, assuming the
    /// scores were produced under a uniform prior, then adjust by −log q.
    /// Kept as a negative result: EM needs calibrated posteriors, and rank pseudo-probabilities
    /// are not, so the iteration runs away to a near one-hot q and the −log q adjustment then
    /// sends almost every row to the class with the smallest estimate.
    EmPrior,
    /// Additive batch calibration: `s − m` in probability space.
    BatchAdditive,
    /// Sinkhorn-style balancing: per-class weights w such that the batch mean of normalise(s·w)
    /// is uniform on the fitting half; decide by argmax s·w.
    Balance,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::None,
        Method::BatchPrior,
        Method::BatchPriorMaxEnt,
        Method::EmPrior,
        Method::BatchAdditive,
        Method::Balance,
    ];

    /// The method recommended by the evaluation (see the module tests and the issue report).
    pub const DEFAULT: Method = Method::BatchPrior;

    pub fn id(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::BatchPrior => "batch-prior",
            Method::BatchPriorMaxEnt => "batch-prior-maxent",
            Method::EmPrior => "em-prior",
            Method::BatchAdditive => "batch-additive",
            Method::Balance => "balance",
        }
    }
}

/// A fitted correction: how to turn scores into adjusted decision scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Correction {
    Identity,
    /// Adjusted score = log s_k + offset_k.
    LogOffset(Vec<f64>),
    /// Adjusted score = s_k − mean_k.
    Subtract(Vec<f64>),
}

impl Correction {
    pub fn adjust(&self, scores: &[f64]) -> Vec<f64> {
        match self {
            Correction::Identity => scores.to_vec(),
            Correction::LogOffset(o) => scores.iter().zip(o).map(|(s, o)| s.ln() + o).collect(),
            Correction::Subtract(m) => scores.iter().zip(m).map(|(s, m)| s - m).collect(),
        }
    }

    pub fn predict(&self, scores: &[f64]) -> usize {
        argmax(&self.adjust(scores))
    }

    /// Logit adjustment with known class priors: `log s − τ·log prior`.
    pub fn from_priors(priors: &[f64], tau: f64) -> Self {
        Correction::LogOffset(priors.iter().map(|p| -tau * p.max(1e-300).ln()).collect())
    }

    /// Contextual calibration: divide by the model's answer to a content-free input (a grey frame
    /// with empty measurements), i.e. `log s − log s_cf`.
    pub fn from_content_free(content_free_scores: &[f64]) -> Self {
        Self::from_priors(content_free_scores, 1.0)
    }
}

fn batch_mean(scores: &[Vec<f64>], k: usize) -> Vec<f64> {
    let mut m = vec![0.0; k];
    for s in scores {
        for (acc, x) in m.iter_mut().zip(s) {
            *acc += x;
        }
    }
    let n = scores.len().max(1) as f64;
    m.iter().map(|x| x / n).collect()
}

fn entropy_of_decisions(c: &Correction, scores: &[Vec<f64>], k: usize) -> f64 {
    let mut counts = vec![0usize; k];
    for s in scores {
        counts[c.predict(s)] += 1;
    }
    let n = scores.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// Fits `method` on a batch of score vectors. Takes scores only — ground truth cannot reach it.
pub fn fit(method: Method, scores: &[Vec<f64>], k: usize) -> Correction {
    let log_prior = |tau: f64, q: &[f64]| {
        Correction::LogOffset(q.iter().map(|q| -tau * q.max(1e-300).ln()).collect())
    };
    match method {
        Method::None => Correction::Identity,
        Method::BatchPrior => log_prior(1.0, &batch_mean(scores, k)),
        Method::BatchPriorMaxEnt => {
            let m = batch_mean(scores, k);
            let mut best = (f64::NEG_INFINITY, Correction::Identity);
            for step in 0..=30 {
                let c = log_prior(step as f64 / 10.0, &m);
                let h = entropy_of_decisions(&c, scores, k);
                // Strictly greater: ties keep the smaller τ, the milder correction.
                if h > best.0 + 1e-12 {
                    best = (h, c);
                }
            }
            best.1
        }
        Method::EmPrior => {
            let mut q = vec![1.0 / k as f64; k];
            for _ in 0..200 {
                let mut next = vec![0.0; k];
                for s in scores {
                    let post: Vec<f64> = s.iter().zip(&q).map(|(s, q)| s * q).collect();
                    let z: f64 = post.iter().sum();
                    for (acc, p) in next.iter_mut().zip(&post) {
                        *acc += p / z;
                    }
                }
                let n = scores.len().max(1) as f64;
                next.iter_mut().for_each(|x| *x /= n);
                let delta: f64 = next.iter().zip(&q).map(|(a, b)| (a - b).abs()).sum();
                q = next;
                if delta < 1e-10 {
                    break;
                }
            }
            log_prior(1.0, &q)
        }
        Method::BatchAdditive => Correction::Subtract(batch_mean(scores, k)),
        Method::Balance => {
            let mut w = vec![1.0; k];
            for _ in 0..500 {
                let mut mean = vec![0.0; k];
                for s in scores {
                    let z: f64 = s.iter().zip(&w).map(|(s, w)| s * w).sum();
                    for ((acc, s), w) in mean.iter_mut().zip(s).zip(&w) {
                        *acc += s * w / z;
                    }
                }
                let n = scores.len().max(1) as f64;
                let target = 1.0 / k as f64;
                let mut delta = 0.0;
                for (w, m) in w.iter_mut().zip(&mean) {
                    let m = m / n;
                    delta += (m - target).abs();
                    *w *= target / m;
                }
                if delta < 1e-10 {
                    break;
                }
            }
            Correction::LogOffset(w.iter().map(|w| w.ln()).collect())
        }
    }
}

/// Scores of every record under `rule`.
pub fn dataset_scores(data: &Dataset, rule: RankRule) -> Vec<Vec<f64>> {
    data.records
        .iter()
        .map(|r| rank_scores(&r.ranked, data.labels.len(), rule))
        .collect()
}

/// Fits `method` on the fitting half of `data`. Only names (for the split) and ranked labels are
/// read; `gt` is not.
pub fn fit_on_half(data: &Dataset, method: Method, rule: RankRule) -> Correction {
    let k = data.labels.len();
    let scores: Vec<Vec<f64>> = data
        .records
        .iter()
        .filter(|r| half_of(&r.name) == Half::Fit)
        .map(|r| rank_scores(&r.ranked, k, rule))
        .collect();
    fit(method, &scores, k)
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    pub method: &'static str,
    pub correction: Correction,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub labels: Vec<String>,
    pub rank_rule: RankRule,
    pub rows: usize,
    pub fit_rows: usize,
    pub eval_rows: usize,
    /// The model's literal top-1 over the whole file, uncorrected (comparable to published numbers).
    pub whole_file_top1: Metrics,
    /// Literal top-1 on the held-out half, for reference next to `methods`.
    pub eval_top1: Metrics,
    /// Held-out metrics per method; "none" is the argmax of the rank scores (the first in-set label).
    pub methods: Vec<MethodReport>,
    pub default_method: &'static str,
}

/// Fits every method on the fitting half and measures it on the held-out half.
pub fn evaluate_dataset(data: &Dataset, rule: RankRule) -> Report {
    let k = data.labels.len();
    let recs = &data.records;
    let gt_all: Vec<usize> = recs.iter().map(|r| r.gt).collect();
    let top1_all: Vec<Option<usize>> = recs.iter().map(|r| r.top1).collect();
    let eval: Vec<&Record> = recs
        .iter()
        .filter(|r| half_of(&r.name) == Half::Eval)
        .collect();
    let eval_gt: Vec<usize> = eval.iter().map(|r| r.gt).collect();
    let eval_scores: Vec<Vec<f64>> = eval
        .iter()
        .map(|r| rank_scores(&r.ranked, k, rule))
        .collect();
    let methods = Method::ALL
        .iter()
        .map(|&m| {
            let correction = fit_on_half(data, m, rule);
            let pred: Vec<Option<usize>> = eval_scores
                .iter()
                .map(|s| Some(correction.predict(s)))
                .collect();
            MethodReport {
                method: m.id(),
                correction,
                metrics: evaluate(&eval_gt, &pred, k),
            }
        })
        .collect();
    Report {
        labels: data.labels.names().to_vec(),
        rank_rule: rule,
        rows: recs.len(),
        fit_rows: recs.len() - eval.len(),
        eval_rows: eval.len(),
        whole_file_top1: evaluate(&gt_all, &top1_all, k),
        eval_top1: evaluate(
            &eval_gt,
            &eval.iter().map(|r| r.top1).collect::<Vec<_>>(),
            k,
        ),
        methods,
        default_method: Method::DEFAULT.id(),
    }
}

fn render_metrics(out: &mut String, labels: &[String], m: &Metrics) {
    let _ = writeln!(out, "  UAR {:.1}  WAR {:.1}  (n = {})", m.uar, m.war, m.n);
    let _ = writeln!(out, "  {:<16}{:>8}{:>8}", "class", "recall", "share");
    for (i, l) in labels.iter().enumerate() {
        let r = m.recall[i].map_or("-".to_string(), |r| format!("{r:.1}"));
        let _ = writeln!(out, "  {:<16}{:>8}{:>8.1}", l, r, m.share[i]);
    }
    if m.share_other > 0.0 {
        let _ = writeln!(
            out,
            "  {:<16}{:>8}{:>8.1}",
            "(out of set)", "", m.share_other
        );
    }
    let _ = write!(
        out,
        "  confusion (rows: true, columns: predicted)\n  {:<16}",
        ""
    );
    for l in labels {
        // The first 8 characters (not bytes: labels may be `嫌悪感` or `disgusté`).
        let short: String = l.chars().take(8).collect();
        let _ = write!(out, "{short:>9}");
    }
    out.push('\n');
    for (i, l) in labels.iter().enumerate() {
        let _ = write!(out, "  {:<16}", l);
        for c in &m.confusion[i] {
            let _ = write!(out, "{c:>9}");
        }
        out.push('\n');
    }
}

/// Human-readable rendering of a [`Report`].
pub fn render_text(file: &str, r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{file}: {} rows, {} classes ({}); fit half {} rows, held-out half {} rows; rank rule {:?}",
        r.rows,
        r.labels.len(),
        r.labels.join(", "),
        r.fit_rows,
        r.eval_rows,
        r.rank_rule
    );
    let _ = writeln!(out, "\nwhole file, literal top-1, no correction:");
    render_metrics(&mut out, &r.labels, &r.whole_file_top1);
    let _ = writeln!(out, "\nheld-out half, literal top-1, no correction:");
    render_metrics(&mut out, &r.labels, &r.eval_top1);
    for m in &r.methods {
        let tag = if m.method == r.default_method {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(out, "\nheld-out half, method {}{tag}:", m.method);
        render_metrics(&mut out, &r.labels, &m.metrics);
    }
    let base = &r.methods[0].metrics;
    let _ = writeln!(out, "\nsummary (held-out half, vs. method none):");
    for m in &r.methods {
        let _ = writeln!(
            out,
            "  {:<20} UAR {:5.1} ({:+.1})  WAR {:5.1} ({:+.1})",
            m.method,
            m.metrics.uar,
            m.metrics.uar - base.uar,
            m.metrics.war,
            m.metrics.war - base.war
        );
    }
    out
}

/// `emolens eval-calibration FILE [--json]`: the report as text or JSON.
pub fn eval_calibration_cli(path: &Path, json: bool) -> Result<String, CalibError> {
    let data = load(path)?;
    let report = evaluate_dataset(&data, RankRule::Reciprocal);
    Ok(if json {
        serde_json::to_string_pretty(&report).expect("report serialises")
    } else {
        render_text(&path.display().to_string(), &report)
    })
}
