//! Evaluation commands on labelled image lists (`eval verify`, `eval identify`, `eval liveness`)
//! and the metrics behind them (ROC AUC, TAR at FAR, k-fold accuracy, FPIR/FNIR, APCER/BPCER).
//!
//! They run the same code paths as the kiosk ([`FacePipeline`]); input lists are UTF-8 TSV with a
//! header row and paths relative to `--root`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::FacePipeline;
use crate::detect::Select;
use crate::image_io;
use crate::matcher::{Cohort, Gallery, Identification, MatchConfig, decide};

pub use crate::matcher;

mod sequences;
pub use sequences::{SequenceOptions, SequenceReport, sequences};

/// Errors of the evaluation layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Face(#[from] crate::Error),
    #[error(transparent)]
    Image(#[from] image_io::Error),
    #[error("{}: line {line}: {message}", path.display())]
    Tsv {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A TSV file: header names and rows (each with its 1-based line number).
pub struct Tsv {
    pub path: PathBuf,
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Tsv {
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let header = lines
            .next()
            .map(|(_, h)| h.split('\t').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let rows = lines
            .map(|(i, l)| (i + 1, l.split('\t').map(|s| s.trim().to_string()).collect()))
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// Index of a column, or an error naming it.
    pub fn col(&self, name: &str) -> Result<usize, Error> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::Tsv {
                path: self.path.clone(),
                line: 1,
                message: format!("missing column `{name}` (have: {})", self.header.join(", ")),
            })
    }

    pub fn opt_col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Cell `i` of a row, or an error naming the line.
    pub fn cell<'a>(&self, row: &'a (usize, Vec<String>), i: usize) -> Result<&'a str, Error> {
        row.1.get(i).map(String::as_str).ok_or_else(|| Error::Tsv {
            path: self.path.clone(),
            line: row.0,
            message: format!("missing column {}", i + 1),
        })
    }

    fn bad(&self, line: usize, message: String) -> Error {
        Error::Tsv {
            path: self.path.clone(),
            line,
            message,
        }
    }
}

// ---------------------------------------------------------------- metrics

/// ROC AUC: the probability that a random positive scores above a random negative (ties count
/// half). `NaN` when either class is empty.
pub fn roc_auc(scores: &[(f32, bool)]) -> f64 {
    let mut v: Vec<(f32, bool)> = scores.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0.0f64, 0usize);
    let n_pos = v.iter().filter(|s| s.1).count();
    let n_neg = v.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return f64::NAN;
    }
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        // average 1-based rank of the tie group
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * v[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    (rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0) / (n_pos as f64 * n_neg as f64)
}

/// True-accept rate at a false-accept rate: the threshold `t` is the smallest for which at most
/// `floor(far * negatives)` negatives score above it (accept iff score > t). Returns (TAR, t).
pub fn tar_at_far(scores: &[(f32, bool)], far: f64) -> (f64, f32) {
    let mut neg: Vec<f32> = scores.iter().filter(|s| !s.1).map(|s| s.0).collect();
    neg.sort_by(|a, b| b.total_cmp(a));
    let pos: Vec<f32> = scores.iter().filter(|s| s.1).map(|s| s.0).collect();
    if pos.is_empty() {
        return (f64::NAN, f32::NAN);
    }
    let k = (far * neg.len() as f64).floor() as usize;
    let t = neg.get(k).copied().unwrap_or(f32::NEG_INFINITY);
    let tar = pos.iter().filter(|&&s| s > t).count() as f64 / pos.len() as f64;
    (tar, t)
}

/// Accuracy of the rule "same iff score >= t".
pub fn accuracy_at(scores: &[(f32, bool)], t: f32) -> f64 {
    let ok = scores.iter().filter(|s| (s.0 >= t) == s.1).count();
    ok as f64 / scores.len().max(1) as f64
}

/// The threshold (midpoint between adjacent distinct scores) with the best accuracy.
pub fn best_threshold(scores: &[(f32, bool)]) -> (f64, f32) {
    let mut vals: Vec<f32> = scores.iter().map(|s| s.0).collect();
    vals.sort_by(|a, b| a.total_cmp(b));
    vals.dedup();
    let mut cands: Vec<f32> = vals.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    if let (Some(lo), Some(hi)) = (vals.first(), vals.last()) {
        cands.push(lo - 1e-3);
        cands.push(hi + 1e-3);
    }
    let mut best = (f64::NEG_INFINITY, 0.0f32);
    for t in cands {
        let a = accuracy_at(scores, t);
        if a > best.0 {
            best = (a, t);
        }
    }
    best
}

/// k-fold accuracy: for each fold, the best threshold on the other folds applied to it. Returns
/// (mean accuracy, standard deviation, mean threshold).
pub fn kfold_accuracy(scores: &[(f32, bool)], folds: &[u32]) -> (f64, f64, f32) {
    let mut ids: Vec<u32> = folds.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut accs = Vec::new();
    let mut ts = Vec::new();
    for &f in &ids {
        let train: Vec<(f32, bool)> = scores
            .iter()
            .zip(folds)
            .filter(|(_, g)| **g != f)
            .map(|(s, _)| *s)
            .collect();
        let test: Vec<(f32, bool)> = scores
            .iter()
            .zip(folds)
            .filter(|(_, g)| **g == f)
            .map(|(s, _)| *s)
            .collect();
        let (_, t) = best_threshold(&train);
        accs.push(accuracy_at(&test, t));
        ts.push(t);
    }
    let n = accs.len().max(1) as f64;
    let mean = accs.iter().sum::<f64>() / n;
    let var = accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
    (
        mean,
        var.sqrt(),
        ts.iter().sum::<f32>() / ts.len().max(1) as f32,
    )
}

/// The score threshold at which at most `floor(rate * n)` of the non-mated `scores` are above
/// it (accept iff score > t).
pub fn threshold_for_rate(nonmated: &[f32], rate: f64) -> f32 {
    let mut v = nonmated.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    let k = (rate * v.len() as f64).floor() as usize;
    v.get(k).copied().unwrap_or(f32::NEG_INFINITY)
}

// ---------------------------------------------------------------- embedding images

/// Caches per-image embeddings of the chosen face, as a probe (a kiosk frame) or as an enrolment
/// template ([`FacePipeline::template`]: flip-averaged).
pub(crate) struct Embeddings<'p> {
    pub(crate) pipeline: &'p mut FacePipeline,
    root: PathBuf,
    select: Select,
    cache: HashMap<(String, bool), Option<Vec<f32>>>,
}

impl<'p> Embeddings<'p> {
    fn new(pipeline: &'p mut FacePipeline, root: &Path, select: Select) -> Self {
        Self {
            pipeline,
            root: root.to_path_buf(),
            select,
            cache: HashMap::new(),
        }
    }

    /// The probe embedding; `None` when no face was found.
    pub(crate) fn get(&mut self, rel: &str) -> Result<Option<Vec<f32>>, Error> {
        self.embed(rel, false)
    }

    /// The enrolled side's embedding, made as `templates` says; `None` when no face was found.
    pub(crate) fn enrolled(
        &mut self,
        rel: &str,
        templates: Templates,
    ) -> Result<Option<Vec<f32>>, Error> {
        self.embed(rel, templates == Templates::FlipAveraged)
    }

    fn embed(&mut self, rel: &str, template: bool) -> Result<Option<Vec<f32>>, Error> {
        let key = (rel.to_string(), template);
        if let Some(e) = self.cache.get(&key) {
            return Ok(e.clone());
        }
        let img = image_io::load_rgb(&self.root.join(rel))?;
        let e = match self.pipeline.detect_one(&img, self.select)? {
            Some(face) if template => Some(self.pipeline.template(&img, &face)?),
            Some(face) => Some(self.pipeline.embed_face(&img, &face)?),
            None => None,
        };
        self.cache.insert(key, e.clone());
        Ok(e)
    }

    /// Images in which no face was found.
    fn failures(&self) -> usize {
        let mut missed: Vec<&str> = self
            .cache
            .iter()
            .filter(|(_, e)| e.is_none())
            .map(|((p, _), _)| p.as_str())
            .collect();
        missed.sort_unstable();
        missed.dedup();
        missed.len()
    }
}

// ---------------------------------------------------------------- verify

/// Result of `eval verify`.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub templates: Templates,
    pub pairs: usize,
    pub genuine: usize,
    pub impostor: usize,
    /// Images with no face (their pairs score -1, i.e. count as rejections).
    pub failures_to_detect: usize,
    pub auc: f64,
    /// k-fold accuracy (mean, std) when the file has a `fold` column.
    pub kfold: Option<(f64, f64)>,
    pub best_accuracy: f64,
    pub best_threshold: f32,
    pub tar_far_1e2: (f64, f32),
    pub tar_far_1e3: (f64, f32),
    /// Per pair: img1, img2, same, score.
    pub scores: Vec<(String, String, bool, f32)>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pairs scored         {} ({} same, {} different)",
            self.pairs, self.genuine, self.impostor
        )?;
        writeln!(f, "img1 as template     {}", self.templates)?;
        writeln!(f, "failures to detect   {} images", self.failures_to_detect)?;
        writeln!(f, "ROC AUC              {:.4}", self.auc)?;
        match self.kfold {
            Some((m, s)) => writeln!(
                f,
                "accuracy (k-fold)    {:.2}% ± {:.2}",
                m * 100.0,
                s * 100.0
            )?,
            None => writeln!(f, "accuracy (best thr)  {:.2}%", self.best_accuracy * 100.0)?,
        }
        writeln!(
            f,
            "TAR @ FAR 1e-2       {:.2}% (threshold {:.3})",
            self.tar_far_1e2.0 * 100.0,
            self.tar_far_1e2.1
        )?;
        writeln!(
            f,
            "TAR @ FAR 1e-3       {:.2}% (threshold {:.3})",
            self.tar_far_1e3.0 * 100.0,
            self.tar_far_1e3.1
        )?;
        write!(
            f,
            "best threshold       {:.3} (accuracy {:.2}%)",
            self.best_threshold,
            self.best_accuracy * 100.0
        )
    }
}

/// How evaluation makes the enrolled side's embeddings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Templates {
    /// As enrolment stores them: flip-averaged ([`FacePipeline::template`]).
    #[default]
    FlipAveraged,
    /// Like a kiosk frame (the rule before flip-averaged templates; for comparison).
    Plain,
}

impl fmt::Display for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Templates::FlipAveraged => "flip-averaged",
            Templates::Plain => "plain (as a frame)",
        })
    }
}

/// Scores `img1 img2 same [fold]` pairs with the face nearest each image's centre: img2 as a
/// kiosk frame, img1 the same way (`Plain`: the model's own 1:1 figure) or as an enrolment
/// template (`FlipAveraged`: what the kiosk compares).
pub fn verify(
    pipeline: &mut FacePipeline,
    pairs: &Path,
    root: &Path,
    templates: Templates,
) -> Result<VerifyReport, Error> {
    let tsv = Tsv::read(pairs)?;
    let (c1, c2, cs) = (tsv.col("img1")?, tsv.col("img2")?, tsv.col("same")?);
    let cf = tsv.opt_col("fold");
    let mut emb = Embeddings::new(pipeline, root, Select::NearestCentre);
    let mut scores = Vec::new();
    let mut sv = Vec::new();
    let mut folds = Vec::new();
    for row in &tsv.rows {
        let (a, b) = (tsv.cell(row, c1)?, tsv.cell(row, c2)?);
        let same = match tsv.cell(row, cs)? {
            "1" | "true" | "same" => true,
            "0" | "false" | "different" => false,
            other => return Err(tsv.bad(row.0, format!("`same` must be 1 or 0, got `{other}`"))),
        };
        if let Some(cf) = cf {
            let v = tsv.cell(row, cf)?;
            folds.push(
                v.parse::<u32>()
                    .map_err(|e| tsv.bad(row.0, format!("fold `{v}`: {e}")))?,
            );
        }
        // with `FlipAveraged`, img1 plays the enrolled template and img2 the kiosk frame
        let s = match (emb.enrolled(a, templates)?, emb.get(b)?) {
            (Some(x), Some(y)) => crate::embed::cosine(&x, &y),
            _ => -1.0,
        };
        scores.push((a.to_string(), b.to_string(), same, s));
        sv.push((s, same));
    }
    let failures_to_detect = emb.failures();
    let (best_accuracy, best_threshold) = best_threshold(&sv);
    Ok(VerifyReport {
        templates,
        pairs: sv.len(),
        genuine: sv.iter().filter(|s| s.1).count(),
        impostor: sv.iter().filter(|s| !s.1).count(),
        failures_to_detect,
        auc: roc_auc(&sv),
        kfold: cf.map(|_| {
            let (m, s, _) = kfold_accuracy(&sv, &folds);
            (m, s)
        }),
        best_accuracy,
        best_threshold,
        tar_far_1e2: tar_at_far(&sv, 1e-2),
        tar_far_1e3: tar_at_far(&sv, 1e-3),
        scores,
    })
}

/// Writes `img1 img2 same score` TSV.
pub fn write_scores(path: &Path, report: &VerifyReport) -> Result<(), Error> {
    let io = |source| Error::Io {
        context: format!("cannot write {}", path.display()),
        source,
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    writeln!(f, "img1\timg2\tsame\tscore").map_err(io)?;
    for (a, b, same, s) in &report.scores {
        writeln!(f, "{a}\t{b}\t{}\t{s:.6}", u8::from(*same)).map_err(io)?;
    }
    f.flush().map_err(io)
}

// ---------------------------------------------------------------- identify

/// Result of `eval identify`.
#[derive(Clone, Debug)]
pub struct IdentifyReport {
    pub templates: Templates,
    pub gallery_templates: usize,
    pub gallery_residents: usize,
    pub mated_probes: usize,
    pub nonmated_probes: usize,
    pub failures_to_detect: usize,
    /// Fraction of mated probes whose best resident is right.
    pub rank1: f64,
    /// (target FPIR, threshold, FNIR at it).
    pub fnir_at_fpir: Vec<(f64, f32, f64)>,
    /// The default open-set rule (threshold curve + margin) on this gallery.
    pub default_threshold: f32,
    pub default_margin: f32,
    pub default_fpir: f64,
    pub default_fnir: f64,
    /// What scores were normalised against, and for how many probes it was large enough.
    pub cohort: String,
    pub normalised: usize,
    pub cohort_min: usize,
    /// Highest non-mated best score (the resolution limit of small distractor sets).
    pub max_nonmated: f32,
    /// Lowest correct best score of a mated probe.
    pub min_mated_correct: f32,
}

impl fmt::Display for IdentifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "gallery              {} templates of {} residents ({})",
            self.gallery_templates, self.gallery_residents, self.templates
        )?;
        writeln!(
            f,
            "probes               {} mated, {} non-mated (distractors)",
            self.mated_probes, self.nonmated_probes
        )?;
        writeln!(f, "failures to detect   {}", self.failures_to_detect)?;
        writeln!(f, "rank-1               {:.2}%", self.rank1 * 100.0)?;
        writeln!(
            f,
            "normalisation        against {}: applied to {} of {} probes (needs a cohort of {}+)",
            self.cohort,
            self.normalised,
            self.mated_probes + self.nonmated_probes
                - self.failures_to_detect.min(self.mated_probes),
            self.cohort_min
        )?;
        for (fpir, t, fnir) in &self.fnir_at_fpir {
            let note = if self.nonmated_probes == 0 {
                " (no distractors: add never-enrolled people with role `distractor`)"
            } else if (*fpir * self.nonmated_probes as f64) < 1.0 {
                " (too few distractors to resolve this rate: threshold = highest distractor score)"
            } else {
                ""
            };
            writeln!(
                f,
                "FNIR @ FPIR {:<5}    {:.2}% (threshold {:.3}){note}",
                format!("{}%", fpir * 100.0),
                fnir * 100.0,
                t
            )?;
        }
        if self.nonmated_probes > 0 {
            writeln!(f, "highest distractor   {:.3}", self.max_nonmated)?;
        }
        writeln!(f, "lowest correct mated {:.3}", self.min_mated_correct)?;
        write!(
            f,
            "default rule         threshold {:.3} (gallery of {}) + margin {:.2}: FPIR {:.2}%, FNIR {:.2}%",
            self.default_threshold,
            self.gallery_templates,
            self.default_margin,
            self.default_fpir * 100.0,
            self.default_fnir * 100.0
        )
    }
}

/// What `eval identify` normalises scores against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CohortChoice {
    /// As the kiosk: rows with role `cohort` (the shipped cohort), else the gallery's other
    /// residents.
    #[default]
    Kiosk,
    /// For each probe, every listed face of another identity (a stand-in for a shipped cohort on
    /// a small labelled set: the probe's own identity is never in it).
    Others,
}

/// Options of `eval identify` and `eval sequences`.
#[derive(Clone, Debug, Default)]
pub struct IdentifyOptions {
    pub templates: Templates,
    pub cohort: CohortChoice,
    /// A cohort file ([`Cohort::read`]) to normalise against, as a kiosk configured with one.
    pub cohort_file: Option<PathBuf>,
    /// Without a `role` column: every k-th identity in name order (the 1st, the (k+1)th, ...) is
    /// never enrolled, and its photos are distractors.
    pub holdout_every: Option<usize>,
}

/// One row of an identification list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub path: String,
    pub identity: String,
    /// gallery, probe or distractor (sequences also take attack).
    pub role: String,
    /// Frames with the same visit form one sequence (`eval sequences`).
    pub visit: Option<String>,
}

/// Reads `path identity [role] [visit]`. Without `role`, the first photo of each identity is
/// enrolled and the rest are probes, or distractors for identities held out by
/// `holdout_every`.
pub(crate) fn entries(
    tsv: &Tsv,
    holdout_every: Option<usize>,
    roles: &[&str],
) -> Result<Vec<Entry>, Error> {
    let (cp, ci) = (tsv.col("path")?, tsv.col("identity")?);
    let (cr, cv) = (tsv.opt_col("role"), tsv.opt_col("visit"));
    let held_out: std::collections::HashSet<String> = match holdout_every {
        Some(k) if k > 0 && cr.is_none() => {
            let mut ids: Vec<String> = tsv
                .rows
                .iter()
                .map(|r| tsv.cell(r, ci).map(str::to_string))
                .collect::<Result<_, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter().step_by(k).collect()
        }
        _ => Default::default(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for row in &tsv.rows {
        let (p, id) = (tsv.cell(row, cp)?, tsv.cell(row, ci)?);
        let role = match cr {
            Some(cr) => tsv.cell(row, cr)?.to_string(),
            None if held_out.contains(id) => "distractor".to_string(),
            None if seen.insert(id.to_string()) => "gallery".to_string(),
            None => "probe".to_string(),
        };
        if !roles.contains(&role.as_str()) {
            return Err(tsv.bad(
                row.0,
                format!("role must be one of {}, got `{role}`", roles.join(", ")),
            ));
        }
        let visit = match cv {
            Some(cv) => Some(tsv.cell(row, cv)?.to_string()).filter(|v| !v.is_empty()),
            None => None,
        };
        out.push(Entry {
            path: p.to_string(),
            identity: id.to_string(),
            role,
            visit,
        });
    }
    Ok(out)
}

/// Enrols the `gallery` rows (as enrolment would: [`IdentifyOptions::templates`]); returns the
/// gallery and the identities enrolled.
pub(crate) fn enrol(
    emb: &mut Embeddings,
    entries: &[Entry],
    templates: Templates,
    cohort_file: Option<&Path>,
) -> Result<(Gallery, std::collections::HashSet<String>), Error> {
    let mut gallery = Gallery::new(emb.pipeline.embedding_dim());
    for e in entries.iter().filter(|e| e.role == "gallery") {
        if let Some(t) = emb.enrolled(&e.path, templates)? {
            gallery.add(&e.identity, &t)?;
        }
    }
    // a cohort file, else the `cohort` rows (embedded as frames), else none
    let cohort = match cohort_file {
        Some(path) => Cohort::read(path)?,
        None => {
            let mut cohort = Cohort::new(gallery.dim());
            for e in entries.iter().filter(|e| e.role == "cohort") {
                if let Some(c) = emb.get(&e.path)? {
                    cohort.add(&c)?;
                }
            }
            cohort
        }
    };
    if !cohort.is_empty() {
        gallery.set_cohort(Some(std::sync::Arc::new(cohort)));
    }
    let enrolled = entries
        .iter()
        .filter(|e| e.role == "gallery")
        .map(|e| e.identity.clone())
        .collect();
    Ok((gallery, enrolled))
}

/// Open-set identification on `path identity role` (role = gallery / probe / distractor). Without
/// a `role` column the first photo of each identity is enrolled and the rest are probes (see
/// [`IdentifyOptions::holdout_every`]).
pub fn identify(
    pipeline: &mut FacePipeline,
    images: &Path,
    root: &Path,
    cfg: &MatchConfig,
    opts: IdentifyOptions,
) -> Result<IdentifyReport, Error> {
    let tsv = Tsv::read(images)?;
    let list = entries(
        &tsv,
        opts.holdout_every,
        &["gallery", "probe", "distractor", "cohort"],
    )?;
    let mut emb = Embeddings::new(pipeline, root, Select::NearestCentre);
    let (gallery, enrolled) = enrol(&mut emb, &list, opts.templates, opts.cohort_file.as_deref())?;
    // the "others" cohort: every listed face, as a probe would be embedded
    let mut others: Vec<(&str, Vec<f32>)> = Vec::new();
    if opts.cohort == CohortChoice::Others {
        for e in &list {
            if let Some(v) = emb.get(&e.path)? {
                others.push((&e.identity, v));
            }
        }
    }
    // (normalised best score, correct?, accepted by the rule) for mated probes; (normalised best
    // score, accepted) for non-mated
    let mut mated: Vec<(f32, bool, bool)> = Vec::new();
    let mut nonmated: Vec<(f32, bool)> = Vec::new();
    let mut normalised = 0usize;
    for Entry {
        path,
        identity,
        role,
        ..
    } in &list
    {
        if role == "gallery" || role == "cohort" {
            continue;
        }
        let is_mated = role == "probe" && enrolled.contains(identity);
        let Some(e) = emb.get(path)? else {
            // a failure to detect counts as a miss for a mated probe
            if is_mated {
                mated.push((f32::NEG_INFINITY, false, false));
            }
            continue;
        };
        let mut c = gallery.search(&e);
        if opts.cohort == CohortChoice::Others {
            let mut cohort = Cohort::new(e.len());
            for (_, o) in others.iter().filter(|o| o.0 != identity) {
                cohort.add(o)?;
            }
            c.norm = cohort.stats(&e);
        }
        normalised += usize::from(cfg.normalises(c.norm));
        let (who, score) = c
            .best
            .map_or((None, -1.0), |(w, s)| (Some(w), cfg.normalise(s, c.norm)));
        let correct = who.is_some_and(|w| gallery.resident(w) == identity);
        // the default rule, through the same decision function as the kiosk
        let accepted = matches!(decide(&gallery, &c, cfg), Identification::Match { .. });
        if is_mated {
            mated.push((score, correct, accepted));
        } else {
            nonmated.push((score, accepted));
        }
    }
    let failures_to_detect = emb.failures();
    let rank1 = mated.iter().filter(|m| m.1).count() as f64 / mated.len().max(1) as f64;
    let nm_scores: Vec<f32> = nonmated.iter().map(|n| n.0).collect();
    let fnir_at = |t: f32| {
        mated.iter().filter(|m| !(m.1 && m.0 > t)).count() as f64 / mated.len().max(1) as f64
    };
    let fnir_at_fpir = [0.01, 0.003, 0.001]
        .iter()
        .map(|&r| {
            let t = threshold_for_rate(&nm_scores, r);
            (r, t, fnir_at(t))
        })
        .collect();
    let default_fpir =
        nonmated.iter().filter(|n| n.1).count() as f64 / nonmated.len().max(1) as f64;
    let default_fnir =
        mated.iter().filter(|m| !(m.1 && m.2)).count() as f64 / mated.len().max(1) as f64;
    Ok(IdentifyReport {
        templates: opts.templates,
        gallery_templates: gallery.len(),
        gallery_residents: gallery.residents(),
        mated_probes: mated.len(),
        nonmated_probes: nonmated.len(),
        failures_to_detect,
        rank1,
        fnir_at_fpir,
        default_threshold: cfg.threshold(gallery.len()),
        default_margin: cfg.margin,
        default_fpir,
        default_fnir,
        cohort: match opts.cohort {
            CohortChoice::Others => "every other listed face not of the probe's identity".into(),
            CohortChoice::Kiosk => match gallery.cohort() {
                Some(c) => format!("the cohort's {} faces", c.len()),
                None => "the gallery's other residents (as the kiosk without a cohort file)".into(),
            },
        },
        normalised,
        cohort_min: cfg.cohort_min,
        max_nonmated: nm_scores.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        min_mated_correct: mated
            .iter()
            .filter(|m| m.1)
            .map(|m| m.0)
            .fold(f32::INFINITY, f32::min),
    })
}

// ---------------------------------------------------------------- liveness

/// One image of `eval liveness`.
#[derive(Clone, Debug)]
pub struct LivenessSample {
    pub path: String,
    pub live_label: bool,
    /// Averaged live probability (`None`: no face).
    pub score: Option<f32>,
    pub accepted: bool,
}

/// Result of `eval liveness`.
#[derive(Clone, Debug)]
pub struct LivenessReport {
    pub threshold: f32,
    pub samples: Vec<LivenessSample>,
    pub failures_to_detect: usize,
    /// Attacks accepted as live / attacks.
    pub apcer: f64,
    /// Live faces rejected / live faces (a missing face counts as rejected).
    pub bpcer: f64,
    pub auc: f64,
}

impl fmt::Display for LivenessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.samples {
            let score = s.score.map_or("no face".to_string(), |v| format!("{v:.4}"));
            writeln!(
                f,
                "{:<6} {:<8} live-prob {score:<8} {}",
                if s.live_label { "live" } else { "spoof" },
                if s.accepted { "accepted" } else { "rejected" },
                s.path
            )?;
        }
        let spoof = self.samples.iter().filter(|s| !s.live_label).count();
        let live = self.samples.len() - spoof;
        writeln!(
            f,
            "samples              {} ({live} live, {spoof} spoof), failures to detect {}",
            self.samples.len(),
            self.failures_to_detect
        )?;
        writeln!(f, "threshold            live-prob >= {:.2}", self.threshold)?;
        writeln!(f, "APCER                {:.2}%", self.apcer * 100.0)?;
        writeln!(f, "BPCER                {:.2}%", self.bpcer * 100.0)?;
        write!(f, "ROC AUC              {:.4}", self.auc)
    }
}

/// Liveness on `path label` (live / spoof; extra columns ignored), largest face per image.
pub fn liveness(
    pipeline: &mut FacePipeline,
    labels: &Path,
    root: &Path,
) -> Result<LivenessReport, Error> {
    let tsv = Tsv::read(labels)?;
    let (cp, cl) = (tsv.col("path")?, tsv.col("label")?);
    let threshold = pipeline.liveness_stage().threshold();
    let mut samples = Vec::new();
    for row in &tsv.rows {
        let p = tsv.cell(row, cp)?;
        let live_label = match tsv.cell(row, cl)? {
            "live" | "real" | "bonafide" => true,
            "spoof" | "attack" | "fake" => false,
            other => {
                return Err(tsv.bad(row.0, format!("label must be live or spoof, got `{other}`")));
            }
        };
        let img: RgbImage = image_io::load_rgb(&root.join(p))?;
        let score = match pipeline.detect_one(&img, Select::Largest)? {
            Some(face) => Some(pipeline.liveness(&img, &face)?),
            None => None,
        };
        samples.push(LivenessSample {
            path: p.to_string(),
            live_label,
            accepted: score.as_ref().is_some_and(|s| s.live),
            score: score.map(|s| s.prob[1]),
        });
    }
    let frac = |label: bool, wrong: bool| {
        let n = samples.iter().filter(|s| s.live_label == label).count();
        samples
            .iter()
            .filter(|s| s.live_label == label && s.accepted == wrong)
            .count() as f64
            / n.max(1) as f64
    };
    let sv: Vec<(f32, bool)> = samples
        .iter()
        .map(|s| (s.score.unwrap_or(-1.0), s.live_label))
        .collect();
    Ok(LivenessReport {
        threshold,
        failures_to_detect: samples.iter().filter(|s| s.score.is_none()).count(),
        apcer: frac(false, true),
        bpcer: frac(true, false),
        auc: roc_auc(&sv),
        samples,
    })
}

// ---------------------------------------------------------------- quality

/// Result of `eval quality`: the gate's measurements per image and how many it would reject.
#[derive(Clone, Debug)]
pub struct QualityEval {
    /// Path and report (`None`: no face).
    pub rows: Vec<(String, Option<crate::quality::QualityReport>)>,
}

impl fmt::Display for QualityEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>7} {:>7} {:>8} {:>6} {:>6} {:>6}  {:<12} path",
            "face", "bright", "sharp", "yaw", "pitch", "roll", "verdict"
        )?;
        let mut rejected: BTreeMap<&str, usize> = BTreeMap::new();
        for (p, r) in &self.rows {
            match r {
                Some(q) => {
                    let v = q.rejection.map_or("ok", |r| r.code());
                    if q.rejection.is_some() {
                        *rejected.entry(v).or_default() += 1;
                    }
                    writeln!(
                        f,
                        "{:>7.1} {:>7.1} {:>8.1} {:>6.1} {:>6.1} {:>6.1}  {v:<12} {p}",
                        q.face_px, q.brightness, q.sharpness, q.pose.yaw, q.pose.pitch, q.pose.roll
                    )?;
                }
                None => {
                    *rejected.entry("no_face").or_default() += 1;
                    writeln!(f, "{:>60}  {p}", "no face")?;
                }
            }
        }
        write!(f, "images {}, rejected {:?}", self.rows.len(), rejected)
    }
}

/// Runs detection (largest face) and the quality gate on every `path` of a TSV.
pub fn quality(
    pipeline: &mut FacePipeline,
    images: &Path,
    root: &Path,
) -> Result<QualityEval, Error> {
    let tsv = Tsv::read(images)?;
    let cp = tsv.col("path")?;
    let mut rows = Vec::new();
    for row in &tsv.rows {
        let p = tsv.cell(row, cp)?;
        let img = image_io::load_rgb(&root.join(p))?;
        let q = pipeline
            .detect_one(&img, Select::Largest)?
            .map(|face| pipeline.quality(&img, &face));
        rows.push((p.to_string(), q));
    }
    Ok(QualityEval { rows })
}

/// A cohort file's faces: the face nearest the centre of every `path` of a TSV list, embedded as
/// a kiosk frame is. Returns the cohort and the number of images without a face.
pub fn build_cohort(
    pipeline: &mut FacePipeline,
    images: &Path,
    root: &Path,
) -> Result<(Cohort, usize), Error> {
    let tsv = Tsv::read(images)?;
    let cp = tsv.col("path")?;
    let mut cohort = Cohort::new(pipeline.embedding_dim());
    let mut emb = Embeddings::new(pipeline, root, Select::NearestCentre);
    for row in &tsv.rows {
        if let Some(e) = emb.get(tsv.cell(row, cp)?)? {
            cohort.add(&e)?;
        }
    }
    let missed = emb.failures();
    Ok((cohort, missed))
}

/// Groups rows of an `images.tsv` (path, identity) by identity, in file order.
pub fn group_by_identity(tsv: &Tsv) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let (cp, ci) = (tsv.col("path")?, tsv.col("identity")?);
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &tsv.rows {
        m.entry(tsv.cell(row, ci)?.to_string())
            .or_default()
            .push(tsv.cell(row, cp)?.to_string());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_perfect_random_and_ties() {
        let perfect = [(0.9, true), (0.8, true), (0.1, false), (0.2, false)];
        assert_eq!(roc_auc(&perfect), 1.0);
        let inverted = [(0.1, true), (0.9, false)];
        assert_eq!(roc_auc(&inverted), 0.0);
        let ties = [(0.5, true), (0.5, false)];
        assert_eq!(roc_auc(&ties), 0.5);
        // one of four positive/negative orderings wrong
        let mixed = [(0.9, true), (0.4, true), (0.5, false), (0.1, false)];
        assert_eq!(roc_auc(&mixed), 0.75);
        assert!(roc_auc(&[(0.1, true)]).is_nan());
    }

    #[test]
    fn tar_at_far_uses_the_right_quantile() {
        // 100 negatives 0.00..0.99, positives at 0.5 and 0.995
        let mut s: Vec<(f32, bool)> = (0..100).map(|i| (i as f32 / 100.0, false)).collect();
        s.push((0.5, true));
        s.push((0.995, true));
        let (tar, t) = tar_at_far(&s, 0.01); // one negative may pass: t = 0.98
        assert!((t - 0.98).abs() < 1e-6);
        assert_eq!(tar, 0.5);
        let (tar, t) = tar_at_far(&s, 0.001); // none may pass: t = 0.99
        assert!((t - 0.99).abs() < 1e-6);
        assert_eq!(tar, 0.5);
        let (tar, _) = tar_at_far(&s, 0.6);
        assert_eq!(tar, 1.0);
    }

    #[test]
    fn best_threshold_and_kfold() {
        let s = [
            (0.9, true),
            (0.7, true),
            (0.6, false),
            (0.3, false),
            (0.65, true),
        ];
        let (acc, t) = best_threshold(&s);
        assert_eq!(acc, 1.0);
        assert!(t > 0.6 && t < 0.65);
        let folds = [0, 1, 0, 1, 0];
        let (m, _, _) = kfold_accuracy(&s, &folds);
        assert!(m > 0.5);
        assert_eq!(accuracy_at(&s, 0.0), 0.6);
    }

    #[test]
    fn rate_threshold() {
        let nm: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        assert!((threshold_for_rate(&nm, 0.01) - 0.989).abs() < 1e-6);
        assert!((threshold_for_rate(&nm, 0.001) - 0.998).abs() < 1e-6);
        assert_eq!(threshold_for_rate(&[0.3, 0.2], 0.001), 0.3);
    }
}
