//! `eval sequences`: per-visit error rates of three ways to decide from several frames — the first
//! frame alone, voting (the same resident wins `min_frames` of `window` frames, no spoof among
//! them: the kiosk's rule before fusion) and fusion ([`Visit`], the kiosk's rule now).
//!
//! A visit is either a real sequence (rows sharing a `visit` value, in file order: e.g. a
//! session's webcam frames) or, for a photo without one, a synthetic sequence made from it by
//! small shifts, scale and brightness changes ([`synthetic_frame`]; frame 0 is the photo itself,
//! so "first frame" is the single-photo figure of `eval identify`). Roles: `gallery` (enrolled),
//! `probe`, `distractor` (never enrolled) and `attack` (a presentation attack: any acceptance is a
//! failure).

use std::fmt;
use std::path::Path;

use image::RgbImage;

use super::{Embeddings, Error, IdentifyOptions, Tsv, enrol, entries};
use crate::FacePipeline;
use crate::detect::Select;
use crate::image_io;
use crate::matcher::{Gallery, Identification, MatchConfig};
use crate::visit::{
    Decision, LiveFrame, Observation, Visit, VisitRule, quality_weight, sustained_turn,
};

/// Options of `eval sequences`.
#[derive(Clone, Debug)]
pub struct SequenceOptions {
    pub identify: IdentifyOptions,
    /// Frames of a synthetic sequence.
    pub frames: usize,
    /// Run liveness with this threshold; `None`: every detected face counts as live (news photos
    /// are not camera frames, and the liveness models are not meant for them).
    pub liveness_threshold: Option<f32>,
    /// Refuse frames the quality gate refuses, as the kiosk does (it then asks the elder to move;
    /// a photo cannot).
    pub quality_gate: bool,
    pub rule: VisitRule,
}

impl Default for SequenceOptions {
    fn default() -> Self {
        Self {
            identify: IdentifyOptions::default(),
            frames: 5,
            liveness_threshold: None,
            quality_gate: true,
            rule: VisitRule::default(),
        }
    }
}

/// Frame `i` of a synthetic sequence: the photo shifted by up to 3 px, scaled by up to ±4 % about
/// its centre and brightened or darkened by up to 12 % — what a still person in front of a
/// camera varies by between frames. Frame 0 is the photo unchanged.
pub fn synthetic_frame(img: &RgbImage, i: usize) -> RgbImage {
    if i == 0 {
        return img.clone();
    }
    let t = i as f32;
    let (dx, dy) = (3.0 * (2.4 * t).cos(), 3.0 * (2.4 * t).sin());
    let scale = 1.0 + 0.04 * (1.3 * t).sin();
    let gain = 1.0 + 0.12 * (1.7 * t).cos();
    let (w, h) = img.dimensions();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let sx = (x as f32 - cx - dx) / scale + cx;
        let sy = (y as f32 - cy - dy) / scale + cy;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let px = |xx: f32, yy: f32| {
            let xx = xx.clamp(0.0, w as f32 - 1.0) as u32;
            let yy = yy.clamp(0.0, h as f32 - 1.0) as u32;
            img.get_pixel(xx, yy).0
        };
        let (a, b, c, d) = (
            px(x0, y0),
            px(x0 + 1.0, y0),
            px(x0, y0 + 1.0),
            px(x0 + 1.0, y0 + 1.0),
        );
        let mut out = [0u8; 3];
        for k in 0..3 {
            let top = a[k] as f32 * (1.0 - fx) + b[k] as f32 * fx;
            let bottom = c[k] as f32 * (1.0 - fx) + d[k] as f32 * fx;
            let v = (top * (1.0 - fy) + bottom * fy) * gain;
            out[k] = v.round().clamp(0.0, 255.0) as u8;
        }
        image::Rgb(out)
    })
}

/// What became of the visits of one kind under one rule.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Mated visits not accepted as the right resident / mated visits.
    pub fnir: f64,
    /// Non-mated visits accepted as anyone / non-mated visits.
    pub fpir: f64,
    /// Attack visits accepted as anyone / attack visits.
    pub attacks_accepted: f64,
}

/// Result of `eval sequences`.
#[derive(Clone, Debug)]
pub struct SequenceReport {
    pub gallery_templates: usize,
    pub gallery_residents: usize,
    pub mated: usize,
    pub nonmated: usize,
    pub attacks: usize,
    /// Visits made synthetically from one photo, and real sequences.
    pub synthetic: usize,
    pub real: usize,
    pub frames: usize,
    pub liveness_threshold: Option<f32>,
    pub threshold: f32,
    pub margin: f32,
    pub rule: VisitRule,
    pub first_frame: Rates,
    pub voting: Rates,
    pub fusion: Rates,
    /// Visits in which fusion asked for a head turn.
    pub challenged: usize,
    /// The largest [`sustained_turn`] within one synthetic sequence, degrees: how far the pose
    /// estimate wanders on a still picture, against the challenge's `min_turn_deg`.
    pub still_yaw_wander: f32,
    /// Frames with a face that the quality gate refused, of all frames.
    pub gate_refused: usize,
    pub total_frames: usize,
    pub quality_gate: bool,
}

impl fmt::Display for SequenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "gallery              {} templates of {} residents",
            self.gallery_templates, self.gallery_residents
        )?;
        writeln!(
            f,
            "visits               {} mated, {} non-mated, {} attacks ({} synthetic of {} frames, {} real sequences)",
            self.mated, self.nonmated, self.attacks, self.synthetic, self.frames, self.real
        )?;
        match self.liveness_threshold {
            Some(t) => writeln!(f, "liveness             live-prob >= {t:.3}")?,
            None => writeln!(
                f,
                "liveness             not run (photos, not camera frames): every face counts as live"
            )?,
        }
        if self.quality_gate {
            writeln!(
                f,
                "quality gate         refused {} of {} frames (a photo cannot be asked to face the screen)",
                self.gate_refused, self.total_frames
            )?;
        } else {
            writeln!(f, "quality gate         not applied")?;
        }
        writeln!(
            f,
            "match rule           threshold {:.3} + margin {:.2}",
            self.threshold, self.margin
        )?;
        writeln!(
            f,
            "{:<34} {:>8} {:>8} {:>16}",
            "per visit", "FNIR", "FPIR", "attacks accepted"
        )?;
        let k = self.rule.min_frames;
        let n = self.rule.window;
        for (name, r) in [
            ("first frame only".to_string(), self.first_frame),
            (format!("voting {k} of {n}"), self.voting),
            (format!("fusion of {k}+ live frames (kiosk)"), self.fusion),
        ] {
            writeln!(
                f,
                "{name:<34} {:>7.2}% {:>7.2}% {:>15.2}%",
                r.fnir * 100.0,
                r.fpir * 100.0,
                r.attacks_accepted * 100.0
            )?;
        }
        writeln!(
            f,
            "head-turn challenges {} visits (live-prob below {:.2}; a turn of {:.0}° passes)",
            self.challenged, self.rule.challenge_below, self.rule.min_turn_deg
        )?;
        write!(
            f,
            "still-picture turn   up to {:.1}° (sustained turn within a synthetic sequence; a challenge needs {:.0}°)",
            self.still_yaw_wander, self.rule.min_turn_deg
        )
    }
}

/// One visit: a real sequence (its `visit` id) or one photo made into a synthetic sequence.
struct Sequence {
    id: String,
    identity: String,
    role: String,
    paths: Vec<String>,
    real: bool,
}

/// One frame as the kiosk sees it, plus the single-frame identification (for voting).
struct FrameSeen {
    observation: Observation,
    alone: Option<String>,
    yaw: Option<f32>,
}

fn see(
    emb: &mut Embeddings,
    img: &RgbImage,
    gallery: &Gallery,
    cfg: &MatchConfig,
    opts: &SequenceOptions,
) -> Result<FrameSeen, Error> {
    let p = &mut *emb.pipeline;
    let Some(face) = p.detect_one(img, Select::NearestCentre)? else {
        return Ok(FrameSeen {
            observation: Observation::Poor,
            alone: None,
            yaw: None,
        });
    };
    let q = p.quality(img, &face);
    let yaw = Some(q.pose.yaw);
    if q.rejection.is_some() && opts.quality_gate {
        return Ok(FrameSeen {
            observation: Observation::Poor,
            alone: None,
            yaw,
        });
    }
    let liveness = match opts.liveness_threshold {
        Some(t) => {
            let prob = p.liveness(img, &face)?.prob[1];
            if prob < t {
                return Ok(FrameSeen {
                    observation: Observation::Spoof,
                    alone: None,
                    yaw,
                });
            }
            prob
        }
        None => 1.0,
    };
    let embedding = p.embed_face(img, &face)?;
    let alone = match gallery.identify(&embedding, cfg) {
        Identification::Match { resident, .. } => Some(resident),
        Identification::Unknown { .. } => None,
    };
    Ok(FrameSeen {
        observation: Observation::Live(LiveFrame {
            embedding,
            weight: quality_weight(&q),
            liveness,
            yaw: q.pose.yaw,
        }),
        alone,
        yaw,
    })
}

/// Per-visit FNIR / FPIR / attacks accepted for first frame, voting and fusion.
pub fn sequences(
    pipeline: &mut FacePipeline,
    images: &Path,
    root: &Path,
    cfg: &MatchConfig,
    opts: SequenceOptions,
) -> Result<SequenceReport, Error> {
    let tsv = Tsv::read(images)?;
    let list = entries(
        &tsv,
        opts.identify.holdout_every,
        &["gallery", "probe", "distractor", "attack", "cohort"],
    )?;
    let mut emb = Embeddings::new(pipeline, root, Select::NearestCentre);
    let (gallery, enrolled) = enrol(
        &mut emb,
        &list,
        opts.identify.templates,
        opts.identify.cohort_file.as_deref(),
    )?;
    // visits: rows sharing a visit id (in file order), else one photo each
    let mut visits: Vec<Sequence> = Vec::new();
    for e in list
        .iter()
        .filter(|e| e.role != "gallery" && e.role != "cohort")
    {
        let joined = e
            .visit
            .as_ref()
            .and_then(|v| visits.iter_mut().find(|x| x.real && x.id == *v));
        match joined {
            Some(visit) => visit.paths.push(e.path.clone()),
            None => visits.push(Sequence {
                id: e.visit.clone().unwrap_or_default(),
                identity: e.identity.clone(),
                role: e.role.clone(),
                paths: vec![e.path.clone()],
                real: e.visit.is_some(),
            }),
        }
    }
    let k = opts.rule.min_frames.max(1);
    let (mut mated, mut nonmated, mut attacks) = (0usize, 0usize, 0usize);
    let mut wrong = [(0usize, 0usize, 0usize); 3]; // (missed mated, accepted non-mated, attacks)
    let mut challenged = 0usize;
    let mut wander = 0f32;
    let (mut synthetic, mut real) = (0usize, 0usize);
    let (mut gate_refused, mut total_frames) = (0usize, 0usize);
    for v in &visits {
        let role = &v.role;
        let frames: Vec<RgbImage> = if v.real {
            real += 1;
            v.paths
                .iter()
                .map(|p| image_io::load_rgb(&root.join(p)))
                .collect::<Result<_, _>>()?
        } else {
            synthetic += 1;
            let img = image_io::load_rgb(&root.join(&v.paths[0]))?;
            (0..opts.frames.max(1))
                .map(|i| synthetic_frame(&img, i))
                .collect()
        };
        let mut seen = Vec::with_capacity(frames.len());
        for f in &frames {
            seen.push(see(&mut emb, f, &gallery, cfg, &opts)?);
        }
        if !v.real {
            let yaws: Vec<Option<f32>> = seen.iter().map(|s| s.yaw).collect();
            wander = wander.max(sustained_turn(&yaws, opts.rule.min_frames));
        }
        gate_refused += seen
            .iter()
            .filter(|s| s.yaw.is_some() && matches!(s.observation, Observation::Poor))
            .count();
        total_frames += seen.len();
        // first frame
        let first = seen.first().and_then(|s| s.alone.clone());
        // voting: k wins of the first `window` frames for one resident, no spoof among them
        let window = &seen[..seen.len().min(opts.rule.window.max(1))];
        let spoofed = window
            .iter()
            .any(|s| matches!(s.observation, Observation::Spoof));
        let voted = (!spoofed)
            .then(|| {
                let mut counts: Vec<(&str, usize)> = Vec::new();
                for r in window.iter().filter_map(|s| s.alone.as_deref()) {
                    match counts.iter_mut().find(|c| c.0 == r) {
                        Some(c) => c.1 += 1,
                        None => counts.push((r, 1)),
                    }
                }
                counts
                    .into_iter()
                    .find(|c| c.1 >= k)
                    .map(|c| c.0.to_string())
            })
            .flatten();
        // fusion: the kiosk's visit
        let mut visit = Visit::new(opts.rule);
        let mut fused = None;
        let mut asked = false;
        for s in seen {
            match visit.observe(s.observation, &gallery, cfg) {
                Decision::Accept { resident, .. } => {
                    fused = Some(resident);
                    break;
                }
                Decision::Challenge { .. } => asked = true,
                _ => {}
            }
        }
        challenged += usize::from(asked);
        let is_mated = role == "probe" && enrolled.contains(&v.identity);
        for (i, got) in [first, voted, fused].into_iter().enumerate() {
            match role.as_str() {
                "attack" => wrong[i].2 += usize::from(got.is_some()),
                _ if is_mated => {
                    wrong[i].0 += usize::from(got.as_deref() != Some(v.identity.as_str()))
                }
                _ => wrong[i].1 += usize::from(got.is_some()),
            }
        }
        match role.as_str() {
            "attack" => attacks += 1,
            _ if is_mated => mated += 1,
            _ => nonmated += 1,
        }
    }
    let rate = |n: usize, d: usize| n as f64 / d.max(1) as f64;
    let rates = |w: (usize, usize, usize)| Rates {
        fnir: rate(w.0, mated),
        fpir: rate(w.1, nonmated),
        attacks_accepted: rate(w.2, attacks),
    };
    Ok(SequenceReport {
        gallery_templates: gallery.len(),
        gallery_residents: gallery.residents(),
        mated,
        nonmated,
        attacks,
        synthetic,
        real,
        frames: opts.frames,
        liveness_threshold: opts.liveness_threshold,
        threshold: cfg.threshold(gallery.len()),
        margin: cfg.margin,
        rule: opts.rule,
        first_frame: rates(wrong[0]),
        voting: rates(wrong[1]),
        fusion: rates(wrong[2]),
        challenged,
        still_yaw_wander: wander,
        gate_refused,
        total_frames,
        quality_gate: opts.quality_gate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_frames_move_a_little_and_keep_frame_zero() {
        let img = RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, 100])
        });
        assert_eq!(synthetic_frame(&img, 0), img);
        for i in 1..5 {
            let f = synthetic_frame(&img, i);
            assert_eq!(f.dimensions(), img.dimensions());
            assert_ne!(f, img, "frame {i} differs");
            // the centre pixel stays within the shift/scale/brightness budget
            let (a, b) = (img.get_pixel(20, 15).0, f.get_pixel(20, 15).0);
            for c in 0..3 {
                assert!(
                    (a[c] as i32 - b[c] as i32).abs() < 45,
                    "frame {i}: {a:?} vs {b:?}"
                );
            }
        }
    }
}
