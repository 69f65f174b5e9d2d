//! Open-set 1:N matching against the enrolled gallery.
//!
//! The gallery is one contiguous row-major `f32` matrix (`rows x dim`, unit rows; see
//! [`Gallery::templates`]) with several templates per resident, plus a 12-bit quantised copy of
//! it (per-row scale, stored as `i16`: half the bytes of `f32`) used for the scan. A search
//! scores every row with an integer dot product written so the compiler vectorises it
//! ([`dot_q`]), keeps the [`SHORTLIST`] best rows, re-scores those exactly in `f32`, and reduces
//! to the best and second-best *resident*. (Plain `i8` would halve the bytes again, but without
//! AVX2 the `i8 -> i16` widening costs more than the memory it saves: measured 2.5 ms vs 1.6 ms
//! per 100k rows on baseline x86-64.)
//!
//! Decision ([`Gallery::identify`]): accept the best resident only when
//! `score >= threshold(gallery size)` **and** `score - second_best >= margin`; otherwise the face
//! is *unknown*. The threshold rises with the gallery size (more templates, more chances for a
//! stranger to look like somebody) — see [`MatchConfig::threshold`].
//!
//! **Score normalisation** (open-set): some faces are "generic" — they score high against
//! everybody — and some score low against everybody. Before the rule, both scores are normalised
//! against the probe's own scores on a cohort of faces that are not the probe's: `z = (s - mean) /
//! sd` over the cohort, mapped back to the cosine scale as `impostor_mean + impostor_sd * z` so the
//! threshold curve keeps its meaning for a typical face. The cohort is a shipped set of
//! never-enrolled faces ([`Cohort`], embeddings only) when the kiosk has one, else the gallery's
//! other residents (every row is scored by the scan anyway; the best resident's rows are left
//! out). A cohort smaller than [`MatchConfig::cohort_min`] is not used: its mean and spread are too
//! noisy, and on the dev set a 35-face cohort made matters worse than none.

use std::collections::HashMap;

use ndarray::ArrayView2;

use super::Error;

/// Rows re-scored in `f32` after the `i8` scan.
pub const SHORTLIST: usize = 32;

/// Gallery rows sampled for a probe's cohort statistics.
pub const STATS_SAMPLE: usize = 1024;

/// Open-set decision rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchConfig {
    /// Threshold at the anchor gallery size ([`MatchConfig::anchor_size`]).
    pub anchor_threshold: f32,
    /// Gallery size (templates) at which `anchor_threshold` applies.
    pub anchor_size: f32,
    /// Threshold increase per tenfold increase in gallery size.
    pub per_decade: f32,
    /// Clamp of the curve.
    pub min_threshold: f32,
    pub max_threshold: f32,
    /// Required lead of the best resident over the second best.
    pub margin: f32,
    /// Normalise against a cohort only of at least this many faces.
    pub cohort_min: usize,
    /// Mean and standard deviation of non-mated scores with these models (dev set, 8,662
    /// different-person pairs: 0.011 and 0.144): the scale normalised scores are mapped back to.
    pub impostor_mean: f32,
    pub impostor_sd: f32,
}

impl Default for MatchConfig {
    /// Aims at a false-positive identification rate (a never-enrolled person accepted as somebody)
    /// of about 0.1% at every gallery size: 0.62 at 200 templates (measured with these models:
    /// 0.56 gives 1% and 0.62 gives 0.1% there, i.e. ~0.06 per tenfold change in FPIR, which is
    /// also the rise needed per tenfold growth of the gallery to keep FPIR constant).
    fn default() -> Self {
        Self {
            anchor_threshold: 0.62,
            anchor_size: 200.0,
            per_decade: 0.06,
            min_threshold: 0.45,
            max_threshold: 0.85,
            margin: 0.05,
            cohort_min: 100,
            impostor_mean: 0.011,
            impostor_sd: 0.144,
        }
    }
}

impl MatchConfig {
    /// `clamp(anchor + per_decade * log10(n / anchor_size))` for a gallery of `n` templates.
    pub fn threshold(&self, n: usize) -> f32 {
        let n = n.max(1) as f32;
        (self.anchor_threshold + self.per_decade * (n / self.anchor_size).log10())
            .clamp(self.min_threshold, self.max_threshold)
    }

    /// `score` normalised by a probe's cohort statistics (unchanged without usable ones).
    pub fn normalise(&self, score: f32, norm: Option<Stats>) -> f32 {
        match norm.filter(|s| s.n >= self.cohort_min && s.sd > 1e-6) {
            Some(s) => self.impostor_mean + self.impostor_sd * (score - s.mean) / s.sd,
            None => score,
        }
    }

    /// Whether `norm` is large enough to be used.
    pub fn normalises(&self, norm: Option<Stats>) -> bool {
        norm.is_some_and(|s| s.n >= self.cohort_min && s.sd > 1e-6)
    }
}

/// A probe's scores against a cohort: count, mean and standard deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub mean: f32,
    pub sd: f32,
}

impl Stats {
    /// From a count, sum and sum of squares.
    pub fn from_sums(n: usize, sum: f64, sumsq: f64) -> Option<Stats> {
        if n < 2 {
            return None;
        }
        let mean = sum / n as f64;
        let var = (sumsq / n as f64 - mean * mean).max(0.0);
        Some(Stats {
            n,
            mean: mean as f32,
            sd: var.sqrt() as f32,
        })
    }
}

/// Never-enrolled faces, as unit embeddings only (no images), against which probe scores are
/// normalised (see the module docs). File format ([`Cohort::read`]): a first line
/// `zhucan-cohort <dim>`, then one embedding per line, values separated by spaces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cohort {
    dim: usize,
    rows: Vec<f32>,
}

impl Cohort {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            rows: Vec::new(),
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.rows.len() / self.dim.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a face (normalised to unit length here).
    pub fn add(&mut self, e: &[f32]) -> Result<(), Error> {
        let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        if e.len() != self.dim || !norm.is_finite() || norm == 0.0 {
            return Err(Error::Invalid(format!(
                "cohort face has {} values (norm {norm}); the cohort holds {}-d unit embeddings",
                e.len(),
                self.dim
            )));
        }
        self.rows.extend(e.iter().map(|x| x / norm));
        Ok(())
    }

    /// The probe's score statistics over the cohort.
    pub fn stats(&self, query: &[f32]) -> Option<Stats> {
        if query.len() != self.dim {
            return None;
        }
        let (mut sum, mut sumsq) = (0f64, 0f64);
        for row in self.rows.chunks_exact(self.dim) {
            let s = dot_f32(query, row) as f64;
            sum += s;
            sumsq += s * s;
        }
        Stats::from_sums(self.len(), sum, sumsq)
    }

    /// Reads a cohort file; errors name the line.
    pub fn read(path: &std::path::Path) -> Result<Self, Error> {
        let bad = |line: usize, m: String| {
            Error::Invalid(format!("{}: line {line}: {m}", path.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("cannot read cohort {}", path.display()),
            source,
        })?;
        let mut lines = text.lines().enumerate();
        let dim = match lines
            .next()
            .map(|(_, l)| l.split_whitespace().collect::<Vec<_>>())
        {
            Some(h) if h.len() == 2 && h[0] == "zhucan-cohort" => h[1]
                .parse::<usize>()
                .map_err(|e| bad(1, format!("dimension `{}`: {e}", h[1])))?,
            _ => return Err(bad(1, "expected `zhucan-cohort <dim>`".into())),
        };
        let mut c = Cohort::new(dim);
        for (i, l) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let v: Vec<f32> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| bad(i + 1, format!("not a number: {e}")))?;
            c.add(&v).map_err(|e| bad(i + 1, e.to_string()))?;
        }
        Ok(c)
    }

    /// Writes the cohort file.
    pub fn write(&self, path: &std::path::Path) -> Result<(), Error> {
        use std::fmt::Write as _;
        let mut out = format!("zhucan-cohort {}\n", self.dim);
        for row in self.rows.chunks_exact(self.dim.max(1)) {
            let line: Vec<String> = row.iter().map(|x| format!("{x:.6}")).collect();
            let _ = writeln!(out, "{}", line.join(" "));
        }
        std::fs::write(path, out).map_err(|source| Error::Io {
            context: format!("cannot write cohort {}", path.display()),
            source,
        })
    }
}

/// Best and second-best resident for a probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidates {
    /// Index of the best resident and its score (`None` for an empty gallery).
    pub best: Option<(usize, f32)>,
    /// Score of the best template of any other resident (-1 when there is none).
    pub second: f32,
    /// The probe's scores on the cohort (the shipped one, else the gallery's other residents).
    pub norm: Option<Stats>,
}

/// Outcome of an open-set search.
#[derive(Clone, Debug, PartialEq)]
pub enum Identification {
    /// Accepted: the resident key, score and lead over the runner-up (normalised scores when
    /// the cohort was large enough, see the module docs).
    Match {
        resident: String,
        score: f32,
        margin: f32,
    },
    /// Not accepted; the best candidate is given for logs and calibration only.
    Unknown {
        best: Option<(String, f32)>,
        second: f32,
        threshold: f32,
    },
}

/// The enrolled templates.
#[derive(Clone, Debug, Default)]
pub struct Gallery {
    dim: usize,
    cohort: Option<std::sync::Arc<Cohort>>,
    residents: Vec<String>,
    index: HashMap<String, u32>,
    owner: Vec<u32>,
    /// Rows of each resident (by index).
    rows_of: Vec<Vec<u32>>,
    templates: Vec<f32>,
    quant: Vec<i16>,
    qscale: Vec<f32>,
}

/// Largest quantised magnitude: 12-bit signed values stored in `i16`.
pub const QMAX: f32 = 2047.0;

/// Quantises a vector to integers in `[-QMAX, QMAX]` with a symmetric per-vector scale; returns
/// the scale (`x ≈ q * scale`).
pub fn quantize(v: &[f32], out: &mut [i16]) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let k = QMAX / max;
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x * k).round() as i16;
    }
    max / QMAX
}

/// Integer dot product of quantised vectors: 16 independent `i32` lanes of widened `i16`
/// products, the shape LLVM lowers to `pmaddwd` even on baseline x86-64 (SSE2), so it vectorises
/// without `unsafe` or target-specific code. With entries bounded by [`QMAX`] it cannot overflow
/// for any `dim <= 500`.
#[inline]
pub fn dot_q(a: &[i16], b: &[i16]) -> i32 {
    let mut acc = [0i32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] = acc[i].wrapping_add(x[i] as i32 * y[i] as i32);
        }
    }
    let mut s = acc.iter().fold(0i32, |s, v| s.wrapping_add(*v));
    for (x, y) in ra.iter().zip(rb) {
        s = s.wrapping_add(*x as i32 * *y as i32);
    }
    s
}

/// `f32` dot product with 8 independent accumulators.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

impl Gallery {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Normalise against this cohort of never-enrolled faces instead of the gallery's other
    /// residents (see the module docs).
    pub fn set_cohort(&mut self, cohort: Option<std::sync::Arc<Cohort>>) {
        self.cohort = cohort.filter(|c| c.dim() == self.dim && !c.is_empty());
    }

    /// The shipped cohort, if any.
    pub fn cohort(&self) -> Option<&Cohort> {
        self.cohort.as_deref()
    }

    /// Number of templates (rows).
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// Number of distinct residents.
    pub fn residents(&self) -> usize {
        self.residents.len()
    }

    /// Resident key of an index from [`Candidates`].
    pub fn resident(&self, i: usize) -> &str {
        &self.residents[i]
    }

    /// The templates as one `rows x dim` matrix.
    pub fn templates(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.len(), self.dim), &self.templates)
            .expect("templates are rows x dim")
    }

    /// Adds a template for a resident (normalised to unit length here).
    pub fn add(&mut self, resident: &str, template: &[f32]) -> Result<(), Error> {
        if template.len() != self.dim {
            return Err(Error::Invalid(format!(
                "template has {} values, the gallery holds {}-d templates",
                template.len(),
                self.dim
            )));
        }
        let norm = template.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(Error::Invalid("template is zero or not finite".into()));
        }
        let idx = match self.index.get(resident) {
            Some(&i) => i as usize,
            None => {
                self.residents.push(resident.to_string());
                self.index
                    .insert(resident.to_string(), self.residents.len() as u32 - 1);
                self.residents.len() - 1
            }
        };
        let start = self.templates.len();
        self.templates.extend(template.iter().map(|x| x / norm));
        let row = &self.templates[start..];
        let qstart = self.quant.len();
        self.quant.resize(qstart + self.dim, 0);
        let s = quantize(row, &mut self.quant[qstart..]);
        self.qscale.push(s);
        self.owner.push(idx as u32);
        if self.rows_of.len() <= idx {
            self.rows_of.resize(idx + 1, Vec::new());
        }
        self.rows_of[idx].push(self.owner.len() as u32 - 1);
        Ok(())
    }

    /// Fast search: quantised scan, shortlist, exact `f32` re-score, best and second resident.
    pub fn search(&self, query: &[f32]) -> Candidates {
        if self.is_empty() || query.len() != self.dim {
            return Candidates {
                best: None,
                second: -1.0,
                norm: None,
            };
        }
        let mut q = vec![0i16; self.dim];
        let qs = quantize(query, &mut q);
        // shortlist of (approximate score, row), kept sorted descending
        let mut short: [(f32, u32); SHORTLIST] = [(f32::NEG_INFINITY, u32::MAX); SHORTLIST];
        let mut floor = f32::NEG_INFINITY;
        for (row, (t, &s)) in self
            .quant
            .chunks_exact(self.dim)
            .zip(&self.qscale)
            .enumerate()
        {
            let approx = dot_q(&q, t) as f32 * s;
            if approx > floor {
                let mut i = SHORTLIST - 1;
                while i > 0 && short[i - 1].0 < approx {
                    short[i] = short[i - 1];
                    i -= 1;
                }
                short[i] = (approx, row as u32);
                floor = short[SHORTLIST - 1].0;
            }
        }
        let rows = short
            .iter()
            .filter(|(_, r)| *r != u32::MAX)
            .map(|&(_, r)| r as usize);
        let mut c = self.reduce(query, rows);
        c.norm = match &self.cohort {
            Some(cohort) => cohort.stats(query),
            None => self.gallery_stats(c.best.map(|b| b.0), |r| {
                let t = &self.quant[r * self.dim..(r + 1) * self.dim];
                dot_q(&q, t) as f32 * self.qscale[r] * qs
            }),
        };
        c
    }

    /// The probe's score statistics over the gallery's other residents (all but `best`): over
    /// every row of a gallery of up to [`STATS_SAMPLE`] rows, else over an evenly spaced sample of
    /// that many (a mean and a spread need no more; a separate pass keeps the scan's inner loop
    /// as it was).
    fn gallery_stats(&self, best: Option<usize>, score: impl Fn(usize) -> f32) -> Option<Stats> {
        let step = self.len().div_ceil(STATS_SAMPLE).max(1);
        let (mut n, mut sum, mut sumsq) = (0usize, 0f64, 0f64);
        for r in (0..self.len()).step_by(step) {
            if best.is_some_and(|b| self.owner[r] as usize == b) {
                continue;
            }
            let s = score(r) as f64;
            n += 1;
            sum += s;
            sumsq += s * s;
        }
        // the count that matters is the cohort the sample stands for
        let others = self.len() - best.map_or(0, |b| self.rows_of[b].len());
        Stats::from_sums(n, sum, sumsq).map(|st| Stats { n: others, ..st })
    }

    /// Exact search over every row in `f32` (reference for tests and calibration).
    pub fn search_exact(&self, query: &[f32]) -> Candidates {
        if self.is_empty() || query.len() != self.dim {
            return Candidates {
                best: None,
                second: -1.0,
                norm: None,
            };
        }
        let mut c = self.reduce(query, 0..self.len());
        c.norm = match &self.cohort {
            Some(cohort) => cohort.stats(query),
            None => self.gallery_stats(c.best.map(|b| b.0), |r| {
                dot_f32(query, &self.templates[r * self.dim..(r + 1) * self.dim])
            }),
        };
        c
    }

    fn reduce(&self, query: &[f32], rows: impl Iterator<Item = usize>) -> Candidates {
        let mut best: Option<(usize, f32)> = None;
        let mut second_res: Option<(usize, f32)> = None;
        for r in rows {
            let score = dot_f32(query, &self.templates[r * self.dim..(r + 1) * self.dim]);
            let who = self.owner[r] as usize;
            match best {
                None => best = Some((who, score)),
                Some((b, bs)) if who == b => {
                    if score > bs {
                        best = Some((b, score));
                    }
                }
                Some((b, bs)) => {
                    if score > bs {
                        second_res = Some((b, bs));
                        best = Some((who, score));
                    } else if second_res.is_none_or(|(_, ss)| score > ss) {
                        second_res = Some((who, score));
                    }
                }
            }
        }
        Candidates {
            best,
            second: second_res.map_or(-1.0, |(_, s)| s),
            norm: None,
        }
    }

    /// Open-set decision for a probe (see the module docs).
    pub fn identify(&self, query: &[f32], cfg: &MatchConfig) -> Identification {
        decide(self, &self.search(query), cfg)
    }
}

/// Applies the threshold and margin rule to search candidates, on normalised scores when the
/// cohort is large enough.
pub fn decide(g: &Gallery, c: &Candidates, cfg: &MatchConfig) -> Identification {
    let threshold = cfg.threshold(g.len());
    let best = c.best.map(|(w, s)| (w, cfg.normalise(s, c.norm)));
    let second = if c.second > -1.0 {
        cfg.normalise(c.second, c.norm)
    } else {
        c.second
    };
    match best {
        Some((who, score)) if score >= threshold && score - second >= cfg.margin => {
            Identification::Match {
                resident: g.resident(who).to_string(),
                score,
                margin: score - second,
            }
        }
        best => Identification::Unknown {
            best: best.map(|(w, s)| (g.resident(w).to_string(), s)),
            second,
            threshold,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        // small deterministic LCG, good enough for test vectors
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }

    #[test]
    fn kernels_match_naive() {
        let a: Vec<i16> = (0..197).map(|i| ((i * 37) % 4095 - 2047) as i16).collect();
        let b: Vec<i16> = (0..197).map(|i| ((i * 91) % 4095 - 2047) as i16).collect();
        let naive: i64 = a.iter().zip(&b).map(|(x, y)| *x as i64 * *y as i64).sum();
        assert_eq!(dot_q(&a, &b) as i64, naive);
        // worst case for 192-d: every product at the maximum, no overflow
        let m = vec![QMAX as i16; 192];
        assert_eq!(dot_q(&m, &m) as i64, 192 * 2047 * 2047);
        let x = unit(1, 197);
        let y = unit(2, 197);
        let naive: f32 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
        assert!((dot_f32(&x, &y) - naive).abs() < 1e-5);
    }

    #[test]
    fn quantisation_keeps_scores_close() {
        let x = unit(3, 192);
        let y = unit(4, 192);
        let (mut qx, mut qy) = (vec![0; 192], vec![0; 192]);
        let sx = quantize(&x, &mut qx);
        let sy = quantize(&y, &mut qy);
        let approx = dot_q(&qx, &qy) as f32 * sx * sy;
        assert!((approx - dot_f32(&x, &y)).abs() < 1e-3);
    }

    #[test]
    fn fast_search_agrees_with_exact_and_reduces_per_resident() {
        let mut g = Gallery::new(64);
        for i in 0..500 {
            g.add(&format!("r{}", i % 200), &unit(i, 64)).unwrap();
        }
        assert_eq!((g.len(), g.residents()), (500, 200));
        for probe in [unit(7, 64), unit(9999, 64)] {
            let (fast, exact) = (g.search(&probe), g.search_exact(&probe));
            assert_eq!((fast.best, fast.second), (exact.best, exact.second));
            // cohort statistics from the 12-bit scan are close to the exact ones
            let (f, e) = (fast.norm.unwrap(), exact.norm.unwrap());
            assert_eq!(f.n, e.n);
            assert!((f.mean - e.mean).abs() < 1e-4 && (f.sd - e.sd).abs() < 1e-4);
        }
        // a probe equal to template 7 (resident r7) finds r7 with score 1
        let c = g.search(&unit(7, 64));
        let (who, s) = c.best.unwrap();
        assert_eq!(g.resident(who), "r7");
        assert!((s - 1.0).abs() < 1e-5 && c.second < 0.9);
        assert_eq!(g.templates().dim(), (500, 64));
    }

    #[test]
    fn second_best_is_another_resident() {
        let mut g = Gallery::new(2);
        g.add("a", &[1.0, 0.0]).unwrap();
        g.add("a", &[0.99, 0.1]).unwrap();
        g.add("b", &[0.0, 1.0]).unwrap();
        let c = g.search(&[1.0, 0.0]);
        assert_eq!(
            c.best.map(|b| g.resident(b.0).to_string()),
            Some("a".into())
        );
        assert!(c.second.abs() < 1e-6);
        assert!(g.add("c", &[1.0]).is_err());
        assert!(g.add("c", &[0.0, 0.0]).is_err());
    }

    #[test]
    fn threshold_curve_rises_with_gallery_size_and_margin_applies() {
        let cfg = MatchConfig::default();
        assert!((cfg.threshold(200) - 0.62).abs() < 1e-6);
        assert!((cfg.threshold(2000) - 0.68).abs() < 1e-5);
        assert!(cfg.threshold(100_000) > cfg.threshold(10_000));
        assert!(cfg.threshold(20) < cfg.threshold(200));
        assert_eq!(cfg.threshold(100_000_000), cfg.max_threshold);
        let mut g = Gallery::new(2);
        g.add("a", &[1.0, 0.0]).unwrap();
        g.add("b", &[0.8, 0.6]).unwrap();
        // best a = 0.96, second b = 0.936+: margin too small -> unknown
        let probe = [0.96, 0.28];
        assert!(matches!(
            g.identify(&probe, &cfg),
            Identification::Unknown { .. }
        ));
        let loose = MatchConfig { margin: 0.0, ..cfg };
        assert!(matches!(
            g.identify(&probe, &loose),
            Identification::Match { .. }
        ));
        // a weak best score is unknown whatever the margin
        assert!(matches!(
            g.identify(&[0.3, -0.95], &loose),
            Identification::Unknown { .. }
        ));
    }

    #[test]
    fn normalisation_uses_the_gallerys_other_residents_once_there_are_enough() {
        let cfg = MatchConfig::default();
        let mut g = Gallery::new(64);
        for i in 0..150 {
            g.add(&format!("r{i}"), &unit(i, 64)).unwrap();
        }
        let probe = unit(7, 64);
        let (fast, exact) = (g.search(&probe), g.search_exact(&probe));
        let (f, e) = (fast.norm.unwrap(), exact.norm.unwrap());
        // every resident but the best one (r7)
        assert_eq!((f.n, e.n), (149, 149));
        assert!((f.mean - e.mean).abs() < 1e-3 && (f.sd - e.sd).abs() < 1e-3);
        assert!(cfg.normalises(fast.norm));
        // random 64-d directions: mean ~0, sd ~1/8; a score of 1 is ~8 sds above
        let n = cfg.normalise(1.0, fast.norm);
        let z = (1.0 - f.mean) / f.sd;
        assert!((n - (cfg.impostor_mean + cfg.impostor_sd * z)).abs() < 1e-5);
        match g.identify(&probe, &cfg) {
            Identification::Match {
                resident, score, ..
            } => {
                assert_eq!(resident, "r7");
                assert!((score - n).abs() < 1e-4);
            }
            other => panic!("{other:?}"),
        }
        // 99 other residents are too few: raw scores
        let mut small = Gallery::new(64);
        for i in 0..100 {
            small.add(&format!("r{i}"), &unit(i, 64)).unwrap();
        }
        let c = small.search(&probe);
        assert_eq!(c.norm.map(|s| s.n), Some(99));
        assert!(!cfg.normalises(c.norm));
        assert_eq!(cfg.normalise(0.7, c.norm), 0.7);
    }

    #[test]
    fn a_shipped_cohort_replaces_the_gallery_and_survives_its_file() {
        let cfg = MatchConfig::default();
        let mut cohort = Cohort::new(64);
        for i in 1000..1120 {
            cohort.add(&unit(i, 64)).unwrap();
        }
        assert!(cohort.add(&[1.0; 3]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cohort.txt");
        cohort.write(&path).unwrap();
        let back = Cohort::read(&path).unwrap();
        assert_eq!((back.len(), back.dim()), (120, 64));
        let probe = unit(3, 64);
        let (a, b) = (cohort.stats(&probe).unwrap(), back.stats(&probe).unwrap());
        assert!((a.mean - b.mean).abs() < 1e-5 && (a.sd - b.sd).abs() < 1e-5);
        let mut g = Gallery::new(64);
        for i in 0..5 {
            g.add(&format!("r{i}"), &unit(i, 64)).unwrap();
        }
        assert!(!cfg.normalises(g.search(&probe).norm));
        g.set_cohort(Some(std::sync::Arc::new(back)));
        let c = g.search(&probe);
        assert_eq!(c.norm.map(|s| s.n), Some(120));
        assert!(cfg.normalises(c.norm));
        // a bad file names the line
        std::fs::write(&path, "zhucan-cohort 2\n0.1 0.2\n0.1 x\n").unwrap();
        let err = Cohort::read(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&path, "faces 2\n").unwrap();
        assert!(
            Cohort::read(&path)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
