//! One visit to the counter, several frames, one decision.
//!
//! A kiosk sees an elder for a second or two: 10–20 frames. [`Visit`] turns the frames that pass
//! the quality gate and liveness into one decision:
//!
//! - **fusion**: the quality-weighted mean of the live frames' embeddings ([`fuse`],
//!   [`quality_weight`]) is matched once, with the same open-set rule as a single frame. Averaging
//!   frames averages away what varies between them (blur, a blink, a half-turned head) and keeps
//!   what is the person; `eval sequences` measures it against voting 3 of 5.
//! - **no spoof in the window**: a frame that failed liveness among the recent frames blocks any
//!   acceptance (a print held up between live frames cannot be fused in).
//! - **active challenge** ([`Challenge`]): when a live frame's probability is only borderline
//!   (below [`VisitRule::challenge_below`]) the visit is accepted only after the head has turned by
//!   [`VisitRule::min_turn_deg`] of yaw. MiniFASNet is trained mostly on prints; a phone or tablet
//!   replaying a still photo can score live. A still cannot turn its head, and turning the screen
//!   does not fake it: yaw is read from the nose's offset relative to the eye distance, and tilting
//!   a flat picture shrinks both by the same factor (an affine view of a plane keeps ratios along a
//!   line). Within the frames of one challenge the face must remain the same resident.
//!
//! The same [`Visit`] decides at the kiosk (`kiosk::checkin::Tracker` adds cooldowns and the
//! screen) and in `eval sequences`, so the evaluation measures the rule the counter runs.
//!
//! The module also holds the check that an enrolment's templates agree ([`agreement`]).

use std::collections::VecDeque;

use crate::embed::l2_normalize;
use crate::matcher::{Gallery, Identification, MatchConfig, dot_f32};
use crate::quality::QualityReport;

/// Weight of a frame in a fused embedding, in `(0, 1]`: size (up to the embedder's 112 px input,
/// beyond which a face adds no detail), pose (cosine of yaw and pitch: a turned head shows less of
/// the face) and sharpness (variance of the Laplacian, saturating at 60 — live webcam faces in the
/// dev set measure 66–260, blurred ones fall below 20).
pub fn quality_weight(q: &QualityReport) -> f32 {
    let size = (q.face_px / 112.0).clamp(0.25, 1.0);
    let pose = (q.pose.yaw.to_radians().cos() * q.pose.pitch.to_radians().cos()).max(0.1);
    let sharp = (q.sharpness / 60.0).clamp(0.25, 1.0);
    size * pose * sharp
}

/// The weighted mean of unit embeddings, L2-normalised. `None` when there are none or every
/// weight is zero.
pub fn fuse<'a>(frames: impl IntoIterator<Item = (&'a [f32], f32)>) -> Option<Vec<f32>> {
    let mut sum: Vec<f32> = Vec::new();
    let mut total = 0.0f32;
    for (e, w) in frames {
        // NaN and non-positive weights count for nothing
        if w.is_nan() || w <= 0.0 {
            continue;
        }
        if sum.is_empty() {
            sum = vec![0.0; e.len()];
        }
        if e.len() != sum.len() {
            return None;
        }
        for (s, x) in sum.iter_mut().zip(e) {
            *s += w * x;
        }
        total += w;
    }
    if total == 0.0 || l2_normalize(&mut sum) == 0.0 {
        return None;
    }
    Some(sum)
}

/// The least-agreeing pair of an enrolment's templates: `(lowest cosine, i, j)`; `None` for fewer
/// than two templates.
pub fn agreement(templates: &[Vec<f32>]) -> Option<(f32, usize, usize)> {
    let mut worst: Option<(f32, usize, usize)> = None;
    for i in 0..templates.len() {
        for j in i + 1..templates.len() {
            let s = dot_f32(&templates[i], &templates[j]);
            if worst.is_none_or(|w| s < w.0) {
                worst = Some((s, i, j));
            }
        }
    }
    worst
}

/// The frames that show the same face as most of them: those within [`TEMPLATE_AGREEMENT`] of
/// the medoid (the frame most similar, by weight, to all the others). Someone leaning into the
/// picture for a frame or two is left out of the fusion instead of blended into it.
fn consistent<'a>(frames: &[&'a LiveFrame]) -> Vec<&'a LiveFrame> {
    let pull = |f: &LiveFrame| -> f32 {
        frames
            .iter()
            .map(|o| o.weight * dot_f32(&f.embedding, &o.embedding))
            .sum()
    };
    let medoid = frames
        .iter()
        .map(|f| (pull(f), f))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| f);
    let Some(m) = medoid else {
        return Vec::new();
    };
    frames
        .iter()
        .filter(|f| dot_f32(&f.embedding, &m.embedding) >= TEMPLATE_AGREEMENT)
        .copied()
        .collect()
}

/// Which of an enrolment's good frames to keep (indices, at most `k`): the first, then each frame
/// whose yaw differs by at least `step` degrees from every frame chosen so far, then — if that
/// gives fewer than `k` — the others in order. Templates of several poses match the small turns
/// an elder makes at the counter better than five copies of one.
pub fn pick_diverse(yaws: &[f32], k: usize, step: f32) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    for (i, y) in yaws.iter().enumerate() {
        if chosen.len() < k && chosen.iter().all(|&c| (yaws[c] - y).abs() >= step) {
            chosen.push(i);
        }
    }
    for i in 0..yaws.len() {
        if chosen.len() >= k {
            break;
        }
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen
}

/// Lowest cosine any two templates of one enrolment may have. Frames of one person taken seconds
/// apart at a kiosk score 0.92–0.97 against each other (NUAA webcam frames, dev set); photos of
/// one person years apart go as low as 0.33 (LFW). Below 0.5 the capture most likely holds two
/// people (a carer leaning in) or a bad frame, and a gallery must not learn it.
pub const TEMPLATE_AGREEMENT: f32 = 0.5;

/// How a visit decides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VisitRule {
    /// Live frames fused before a decision...
    pub min_frames: usize,
    /// ...among the last `window` frames (live, spoof or poor).
    pub window: usize,
    /// A live frame below this probability (and at or above the liveness threshold) is
    /// borderline: the visit then needs a head turn.
    pub challenge_below: f32,
    /// Head turn, degrees of [`sustained_turn`], that passes the challenge.
    pub min_turn_deg: f32,
    /// Frames a challenge may take before the visit is refused.
    pub challenge_frames: usize,
    /// Spoof frames in the window before the visit reports a spoof.
    pub spoof_after: usize,
}

impl Default for VisitRule {
    /// Three live frames of the last five, as the kiosk voted before. Live webcam faces of the
    /// dev set score 0.995–0.9999 and attacks 0.000–0.213, so 0.97 asks only faces the models
    /// are unsure of to turn. 10° of [`sustained_turn`] is a slight turn of the head (the quality
    /// gate allows 30°) and about twice what a still picture shifted, scaled and brightened reaches
    /// (`eval sequences` prints it). 30 frames are 2–3 s.
    fn default() -> Self {
        Self {
            min_frames: 3,
            window: 5,
            challenge_below: 0.97,
            min_turn_deg: 10.0,
            challenge_frames: 30,
            spoof_after: 2,
        }
    }
}

/// A live, embedded frame.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveFrame {
    pub embedding: Vec<f32>,
    /// [`quality_weight`] of the frame.
    pub weight: f32,
    /// Live probability.
    pub liveness: f32,
    /// Head yaw, degrees (from the quality report).
    pub yaw: f32,
}

/// What one frame showed, for a visit.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// The quality gate refused the face.
    Poor,
    /// The face failed liveness.
    Spoof,
    Live(LiveFrame),
}

/// What the visit says after a frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Not enough live frames yet (`live` so far in the window).
    Pending { live: usize },
    /// The fused face is nobody enrolled (or a look-alike too close to call).
    Unknown,
    /// Spoof frames in the window.
    Spoof,
    /// Borderline liveness: ask for a slight head turn (`turned` degrees so far).
    Challenge { resident: String, turned: f32 },
    /// The challenge ran out of frames without a turn: refuse the visit.
    Refused,
    /// Accept: the resident, the fused score and the lowest live probability fused.
    Accept {
        resident: String,
        score: f32,
        liveness: f32,
    },
}

/// A challenge in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Challenge {
    pub resident: String,
    /// Frames seen since it started.
    pub frames: usize,
    /// Yaw of the frames fused when it started (the baseline), then of each frame since
    /// (`None`: not a live frame of this face).
    pub yaws: Vec<Option<f32>>,
    /// How many of `yaws` form the baseline.
    pub baseline: usize,
}

/// Median of a non-empty slice (upper median for an even count).
fn median(v: &[f32]) -> f32 {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// The head turn in a challenge's yaws, degrees: how far two consecutive live frames after the
/// first `baseline` both stand from the baseline's median yaw (the smaller of the two, at best).
/// The landmarks jitter from frame to frame; a turn lasts. Requiring it in two frames in a row
/// and measuring from a median keeps a still picture's jitter (`eval sequences` prints the most it
/// reached) well below [`VisitRule::min_turn_deg`].
pub fn sustained_turn(yaws: &[Option<f32>], baseline: usize) -> f32 {
    let base: Vec<f32> = yaws[..baseline.min(yaws.len())]
        .iter()
        .flatten()
        .copied()
        .collect();
    if base.is_empty() {
        return 0.0;
    }
    let b = median(&base);
    yaws[baseline.min(yaws.len())..]
        .windows(2)
        .filter_map(|w| match w {
            [Some(x), Some(y)] => Some((x - b).abs().min((y - b).abs())),
            _ => None,
        })
        .fold(0.0, f32::max)
}

/// The frames of one visit (see the module docs).
#[derive(Clone, Debug)]
pub struct Visit {
    rule: VisitRule,
    window: VecDeque<Observation>,
    challenge: Option<Challenge>,
}

impl Visit {
    pub fn new(rule: VisitRule) -> Self {
        Self {
            rule,
            window: VecDeque::with_capacity(rule.window),
            challenge: None,
        }
    }

    pub fn rule(&self) -> VisitRule {
        self.rule
    }

    /// The challenge in progress, if any.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    /// Forgets the frames: the face left, or the visit was decided.
    pub fn reset(&mut self) {
        self.window.clear();
        self.challenge = None;
    }

    /// Adds a frame and decides with the gallery. After `Accept` or `Refused` the visit starts
    /// afresh.
    pub fn observe(&mut self, obs: Observation, gallery: &Gallery, cfg: &MatchConfig) -> Decision {
        if self.window.len() == self.rule.window.max(1) {
            self.window.pop_front();
        }
        self.window.push_back(obs);
        if let Some(c) = self.challenge.as_mut() {
            c.frames += 1;
        }
        let spoofs = self
            .window
            .iter()
            .filter(|o| matches!(o, Observation::Spoof))
            .count();
        let live: Vec<&LiveFrame> = self
            .window
            .iter()
            .filter_map(|o| match o {
                Observation::Live(f) => Some(f),
                _ => None,
            })
            .collect();
        let live = consistent(&live);
        let decision = if spoofs >= self.rule.spoof_after.max(1) {
            self.challenge = None;
            Decision::Spoof
        } else if spoofs > 0 || live.len() < self.rule.min_frames.max(1) {
            if let Some(c) = self.challenge.as_mut() {
                c.yaws.push(None);
            }
            Decision::Pending { live: live.len() }
        } else {
            let fused = fuse(live.iter().map(|f| (f.embedding.as_slice(), f.weight)));
            match fused.map(|e| gallery.identify(&e, cfg)) {
                Some(Identification::Match {
                    resident, score, ..
                }) => {
                    let liveness = live.iter().map(|f| f.liveness).fold(1.0, f32::min);
                    let yaws: Vec<f32> = live.iter().map(|f| f.yaw).collect();
                    // the newest frame's yaw, if it is a live frame of this face
                    let newest = match self.window.back() {
                        Some(Observation::Live(f)) if live.iter().any(|l| std::ptr::eq(*l, f)) => {
                            Some(f.yaw)
                        }
                        _ => None,
                    };
                    self.challenged(resident, score, liveness, &yaws, newest)
                }
                _ => {
                    self.challenge = None;
                    Decision::Unknown
                }
            }
        };
        let out_of_frames = self
            .challenge
            .as_ref()
            .is_some_and(|c| c.frames >= self.rule.challenge_frames);
        match decision {
            Decision::Challenge { .. } if out_of_frames => {
                self.reset();
                Decision::Refused
            }
            d @ Decision::Accept { .. } => {
                self.reset();
                d
            }
            d => d,
        }
    }

    /// Accepts `resident` outright, or through the head-turn challenge when any fused frame was
    /// borderline (`yaws`: the fused frames'; `newest`: this frame's, if it was fused).
    fn challenged(
        &mut self,
        resident: String,
        score: f32,
        liveness: f32,
        yaws: &[f32],
        newest: Option<f32>,
    ) -> Decision {
        if liveness >= self.rule.challenge_below {
            self.challenge = None;
            return Decision::Accept {
                resident,
                score,
                liveness,
            };
        }
        let c = match self.challenge.take() {
            Some(mut c) if c.resident == resident => {
                c.yaws.push(newest);
                c
            }
            // a new challenge (or another face than the challenged one: start again), its
            // baseline the frames just fused
            _ => Challenge {
                resident: resident.clone(),
                frames: 0,
                yaws: yaws.iter().map(|y| Some(*y)).collect(),
                baseline: yaws.len(),
            },
        };
        let turned = sustained_turn(&c.yaws, c.baseline);
        if turned >= self.rule.min_turn_deg {
            return Decision::Accept {
                resident,
                score,
                liveness,
            };
        }
        self.challenge = Some(c);
        Decision::Challenge { resident, turned }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        l2_normalize(&mut v);
        v
    }

    fn gallery() -> Gallery {
        let mut g = Gallery::new(3);
        g.add("a", &[1.0, 0.0, 0.0]).unwrap();
        g.add("b", &[0.0, 1.0, 0.0]).unwrap();
        g
    }

    fn live(e: &[f32], liveness: f32, yaw: f32) -> Observation {
        Observation::Live(LiveFrame {
            embedding: unit(e),
            weight: 1.0,
            liveness,
            yaw,
        })
    }

    fn run(v: &mut Visit, frames: Vec<Observation>) -> Vec<Decision> {
        let (g, cfg) = (gallery(), MatchConfig::default());
        frames.into_iter().map(|f| v.observe(f, &g, &cfg)).collect()
    }

    #[test]
    fn fusion_weights_and_normalises() {
        let a = unit(&[1.0, 0.0]);
        let b = unit(&[0.0, 1.0]);
        let f = fuse([(a.as_slice(), 1.0), (b.as_slice(), 1.0)]).unwrap();
        assert!(
            (f[0] - f[1]).abs() < 1e-6 && (f[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6
        );
        let f = fuse([(a.as_slice(), 3.0), (b.as_slice(), 1.0)]).unwrap();
        assert!(f[0] > f[1] * 2.9 && f[0] < f[1] * 3.1);
        assert_eq!(fuse([(a.as_slice(), 0.0)]), None);
        assert_eq!(fuse(std::iter::empty()), None);
        assert_eq!(fuse([(a.as_slice(), 1.0), (&[1.0f32][..], 1.0)]), None);
    }

    #[test]
    fn enrolment_prefers_frames_of_different_poses() {
        let yaws = [0.0, 1.0, -5.0, 2.0, 6.0, 0.5, -12.0];
        assert_eq!(pick_diverse(&yaws, 5, 4.0), vec![0, 2, 4, 6, 1]);
        assert_eq!(pick_diverse(&yaws, 3, 4.0), vec![0, 2, 4]);
        // a still face: the first five frames
        assert_eq!(pick_diverse(&[1.0; 8], 5, 4.0), vec![0, 1, 2, 3, 4]);
        assert_eq!(pick_diverse(&[1.0, 2.0], 5, 4.0), vec![0, 1]);
    }

    #[test]
    fn agreement_finds_the_odd_template() {
        let t = vec![
            unit(&[1.0, 0.1, 0.0]),
            unit(&[1.0, 0.0, 0.1]),
            unit(&[0.0, 1.0, 0.0]),
        ];
        let (s, i, j) = agreement(&t).unwrap();
        assert!(s < 0.2 && (i, j) == (0, 2) || (i, j) == (1, 2));
        assert_eq!(agreement(&t[..1]), None);
    }

    #[test]
    fn three_live_frames_fuse_into_one_acceptance() {
        let mut v = Visit::new(VisitRule::default());
        let d = run(
            &mut v,
            vec![
                live(&[1.0, 0.2, 0.1], 0.99, 0.0),
                live(&[1.0, -0.1, 0.2], 0.99, 0.0),
                live(&[1.0, 0.0, -0.2], 0.995, 0.0),
            ],
        );
        assert_eq!(d[0], Decision::Pending { live: 1 });
        assert_eq!(d[1], Decision::Pending { live: 2 });
        match &d[2] {
            Decision::Accept {
                resident,
                score,
                liveness,
            } => {
                assert_eq!(resident, "a");
                assert!(*score > 0.97, "fused score {score}");
                assert_eq!(*liveness, 0.99);
            }
            other => panic!("expected acceptance, got {other:?}"),
        }
        // decided: the next frame starts a new visit
        assert_eq!(
            run(&mut v, vec![live(&[1.0, 0.0, 0.0], 0.99, 0.0)]),
            vec![Decision::Pending { live: 1 }]
        );
    }

    #[test]
    fn a_low_quality_frame_weighs_less_in_the_fused_score() {
        let fused_score = |weight| {
            let mut v = Visit::new(VisitRule::default());
            let poor = Observation::Live(LiveFrame {
                embedding: unit(&[0.55, 0.0, 0.835]),
                weight,
                liveness: 0.99,
                yaw: 0.0,
            });
            let d = run(
                &mut v,
                vec![
                    live(&[1.0, 0.1, 0.0], 0.99, 0.0),
                    poor,
                    live(&[1.0, 0.0, 0.1], 0.99, 0.0),
                ],
            );
            match &d[2] {
                Decision::Accept {
                    resident, score, ..
                } if resident == "a" => *score,
                other => panic!("expected acceptance, got {other:?}"),
            }
        };
        assert!(fused_score(0.25) > fused_score(1.0) + 0.02);
    }

    #[test]
    fn a_face_leaning_in_for_a_frame_is_left_out_of_the_fusion() {
        let mut v = Visit::new(VisitRule::default());
        let d = run(
            &mut v,
            vec![
                live(&[1.0, 0.1, 0.0], 0.99, 0.0),
                live(&[0.0, 1.0, 0.0], 0.99, 0.0),
                live(&[1.0, 0.0, 0.1], 0.99, 0.0),
                live(&[1.0, 0.0, 0.0], 0.99, 0.0),
            ],
        );
        assert_eq!(d[2], Decision::Pending { live: 2 });
        assert!(matches!(&d[3], Decision::Accept { resident, score, .. }
            if resident == "a" && *score > 0.99));
    }

    #[test]
    fn unknown_faces_and_spoofs_settle_nothing() {
        let mut v = Visit::new(VisitRule::default());
        let d = run(
            &mut v,
            vec![
                live(&[0.0, 0.0, 1.0], 0.99, 0.0),
                live(&[0.0, 0.1, 1.0], 0.99, 0.0),
                live(&[0.1, 0.0, 1.0], 0.99, 0.0),
            ],
        );
        assert_eq!(d[2], Decision::Unknown);
        let mut v = Visit::new(VisitRule::default());
        let a = || live(&[1.0, 0.0, 0.0], 0.99, 0.0);
        let d = run(
            &mut v,
            vec![a(), Observation::Spoof, a(), a(), Observation::Spoof],
        );
        // a spoof in the window blocks; two report a spoof
        assert_eq!(d[3], Decision::Pending { live: 3 });
        assert_eq!(d[4], Decision::Spoof);
    }

    #[test]
    fn borderline_liveness_needs_a_head_turn_and_a_still_is_refused() {
        let rule = VisitRule::default();
        let a = |yaw| live(&[1.0, 0.0, 0.0], 0.8, yaw);
        // a still picture on a screen: yaw wanders by a degree, never turns
        let mut v = Visit::new(rule);
        let frames: Vec<Observation> = (0..40).map(|i| a((i % 3) as f32 * 0.5)).collect();
        let d = run(&mut v, frames);
        assert!(matches!(&d[2], Decision::Challenge { resident, .. } if resident == "a"));
        let refused = d
            .iter()
            .position(|x| *x == Decision::Refused)
            .expect("refused");
        assert!(
            refused <= rule.challenge_frames + rule.min_frames,
            "{refused}"
        );
        assert!(!d.iter().any(|x| matches!(x, Decision::Accept { .. })));
        // a live elder turns slightly: accepted
        let mut v = Visit::new(rule);
        let d = run(
            &mut v,
            vec![a(0.0), a(0.5), a(1.0), a(6.0), a(12.0), a(14.0)],
        );
        assert!(matches!(&d[2], Decision::Challenge { .. }));
        assert!(
            matches!(&d[4], Decision::Challenge { turned, .. } if (*turned - 5.5).abs() < 1e-4)
        );
        assert!(matches!(&d[5], Decision::Accept { resident, liveness, .. }
            if resident == "a" && *liveness == 0.8));
        // landmark jitter: single-frame spikes of 12 degrees are not a turn
        let mut v = Visit::new(rule);
        let frames: Vec<Observation> = (0..40)
            .map(|i| a(if i % 2 == 1 { 12.0 } else { 0.0 }))
            .collect();
        let d = run(&mut v, frames);
        assert!(d.contains(&Decision::Refused));
        assert!(!d.iter().any(|x| matches!(x, Decision::Accept { .. })));
        // a confident live face is not challenged
        let mut v = Visit::new(rule);
        let d = run(
            &mut v,
            (0..3).map(|_| live(&[1.0, 0.0, 0.0], 0.99, 0.0)).collect(),
        );
        assert!(matches!(&d[2], Decision::Accept { .. }));
    }

    #[test]
    fn a_challenge_does_not_carry_over_to_another_face() {
        let rule = VisitRule::default();
        let mut v = Visit::new(rule);
        let a = |yaw| live(&[1.0, 0.0, 0.0], 0.8, yaw);
        let b = |yaw| live(&[0.0, 1.0, 0.0], 0.8, yaw);
        // a stays still, then b (held up in front) at another yaw: b starts its own challenge
        // rather than passing a's
        let d = run(
            &mut v,
            vec![a(0.0), a(0.0), a(0.0), b(20.0), b(20.0), b(20.0)],
        );
        assert!(
            matches!(&d[5], Decision::Challenge { resident, turned } if resident == "b" && *turned < 1.0)
        );
        assert!(!d.iter().any(|x| matches!(x, Decision::Accept { .. })));
    }
}
