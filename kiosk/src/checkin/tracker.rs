//! Frame confirmation, pure: per-frame observations go into a [`Tracker`], which hands the live
//! ones to the face crate's [`Visit`] — the quality-weighted fusion of the live frames matched
//! once, no spoof frame in the window, and the head-turn challenge when liveness is borderline —
//! and adds what the counter needs around it: a per-resident cooldown that keeps an elder
//! standing at the counter from being charged twice, and the step the screen shows. Unknown
//! faces, spoofs and refused challenges never settle anything; they only change what the screen
//! says.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use zhucan_domain::ResidentId;
use zhucan_face::matcher::{Gallery, MatchConfig};
use zhucan_face::quality::Reason;
use zhucan_face::visit::{Decision, LiveFrame, Observation, Visit, VisitRule};

/// The confirmation rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Fusion, spoof and challenge rules (`min_frames` live frames of the last `window`).
    pub visit: VisitRule,
    /// No second settlement for the same resident by face within this time.
    pub cooldown: chrono::Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            visit: VisitRule::default(),
            cooldown: chrono::Duration::seconds(10),
        }
    }
}

impl Rule {
    /// `k` live frames of the last `n` (the kiosk configuration's names).
    pub fn k_of_n(k: usize, n: usize, cooldown: chrono::Duration) -> Rule {
        Rule {
            visit: VisitRule {
                min_frames: k,
                window: n,
                ..VisitRule::default()
            },
            cooldown,
        }
    }
}

/// What one frame showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    NoFace,
    /// The quality gate refused the frame.
    Poor(Reason),
    /// A face that is not live.
    Spoof,
    /// A live face, embedded.
    Live(LiveFrame),
}

/// What the screen should do after a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Idle,
    Guiding(Reason),
    /// Gathering live frames: `frames` of those needed so far.
    Checking {
        frames: usize,
    },
    Unknown,
    Spoof,
    /// Liveness was borderline: ask for a slight turn of the head.
    Challenge,
    /// The head never turned: not settled, see staff.
    Refused,
    /// Settle for this resident now (face method).
    Confirm {
        resident: ResidentId,
        score: f32,
        liveness: f32,
    },
    /// The resident was settled moments ago: keep the result on screen, settle nothing.
    Cooldown(ResidentId),
}

/// The visit in progress and the cooldowns.
#[derive(Debug, Clone)]
pub struct Tracker {
    rule: Rule,
    visit: Visit,
    until: HashMap<ResidentId, DateTime<Utc>>,
    /// The resident confirmed while this face has stayed in front of the camera.
    shown: Option<ResidentId>,
}

impl Tracker {
    pub fn new(rule: Rule) -> Tracker {
        Tracker {
            rule,
            visit: Visit::new(rule.visit),
            until: HashMap::new(),
            shown: None,
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Feeds one frame observed at `now`, deciding with the gallery.
    pub fn observe(
        &mut self,
        frame: Frame,
        now: DateTime<Utc>,
        gallery: &Gallery,
        cfg: &MatchConfig,
    ) -> Step {
        self.until.retain(|_, t| *t > now);
        let (obs, poor) = match frame {
            Frame::NoFace => {
                // nobody there: the next face is a new person
                self.visit.reset();
                self.shown = None;
                return Step::Idle;
            }
            Frame::Poor(r) => (Observation::Poor, Some(r)),
            Frame::Spoof => (Observation::Spoof, None),
            Frame::Live(f) => (Observation::Live(f), None),
        };
        match self.visit.observe(obs, gallery, cfg) {
            Decision::Accept {
                resident,
                score,
                liveness,
            } => {
                let Ok(id) = resident.parse().map(ResidentId) else {
                    return Step::Unknown;
                };
                self.shown = Some(id);
                if self.until.contains_key(&id) {
                    return Step::Cooldown(id);
                }
                self.until.insert(id, now + self.rule.cooldown);
                Step::Confirm {
                    resident: id,
                    score,
                    liveness,
                }
            }
            Decision::Pending { live } => match (self.shown, poor) {
                // the settled elder is still standing there: keep their result on screen
                (Some(id), _) if self.until.contains_key(&id) => Step::Cooldown(id),
                (_, Some(r)) => Step::Guiding(r),
                _ => Step::Checking { frames: live },
            },
            Decision::Unknown => Step::Unknown,
            Decision::Spoof => Step::Spoof,
            Decision::Challenge { .. } => Step::Challenge,
            Decision::Refused => Step::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 15, 4, 0, 0)
            .single()
            .expect("time")
    }

    /// Residents 1 and 2, and a stranger's direction (3).
    fn axis(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; 4];
        v[i - 1] = 1.0;
        v
    }

    fn gallery() -> Gallery {
        let mut g = Gallery::new(4);
        g.add("1", &axis(1)).unwrap();
        g.add("2", &axis(2)).unwrap();
        g
    }

    fn live(i: usize, liveness: f32, yaw: f32) -> Frame {
        Frame::Live(LiveFrame {
            embedding: axis(i),
            weight: 1.0,
            liveness,
            yaw,
        })
    }

    fn m(r: usize) -> Frame {
        live(r, 0.99, 0.0)
    }

    #[allow(non_upper_case_globals)]
    const Unknown: fn() -> Frame = || live(3, 0.99, 0.0);

    /// Feeds frames 100 ms apart; returns the steps.
    fn run(tr: &mut Tracker, start: DateTime<Utc>, frames: &[Frame]) -> Vec<Step> {
        let (g, cfg) = (gallery(), MatchConfig::default());
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                tr.observe(
                    f.clone(),
                    start + chrono::Duration::milliseconds(100 * i as i64),
                    &g,
                    &cfg,
                )
            })
            .collect()
    }

    fn confirms(steps: &[Step]) -> Vec<i64> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Confirm { resident, .. } => Some(resident.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn table_of_frame_sequences() {
        use Frame::{NoFace, Spoof};
        let poor = Frame::Poor(Reason::TooSmall);
        let conf = |r| Step::Confirm {
            resident: ResidentId(r),
            score: 1.0,
            liveness: 0.99,
        };
        let cases: Vec<(&str, Vec<Frame>, Vec<i64>, Step)> = vec![
            (
                "three live frames confirm on the third",
                vec![m(1), m(1), m(1)],
                vec![1],
                conf(1),
            ),
            (
                "two are not enough",
                vec![m(1), m(1)],
                vec![],
                Step::Checking { frames: 2 },
            ),
            (
                "3 of 5 with other faces in between",
                vec![m(1), Unknown(), m(2), m(1), m(1)],
                vec![1],
                conf(1),
            ),
            (
                "a stranger's frames outnumber the resident's",
                vec![m(1), Unknown(), Unknown(), Unknown(), m(1), Unknown(), m(1)],
                vec![],
                Step::Unknown,
            ),
            (
                "a spoof in the window blocks",
                vec![m(1), Spoof, m(1), m(1)],
                vec![],
                Step::Checking { frames: 3 },
            ),
            (
                "persisting spoof",
                vec![Spoof, Spoof, Spoof],
                vec![],
                Step::Spoof,
            ),
            (
                "three unknown frames",
                vec![Unknown(), Unknown(), Unknown()],
                vec![],
                Step::Unknown,
            ),
            (
                "poor quality guides",
                vec![poor],
                vec![],
                Step::Guiding(Reason::TooSmall),
            ),
            (
                "no face clears the window",
                vec![m(1), m(1), NoFace, m(1)],
                vec![],
                Step::Checking { frames: 1 },
            ),
            (
                "standing on: one settlement, the result stays",
                vec![m(1); 20],
                vec![1],
                Step::Cooldown(ResidentId(1)),
            ),
            (
                "two people in turn",
                vec![m(1), m(1), m(1), NoFace, m(2), m(2), m(2)],
                vec![1, 2],
                conf(2),
            ),
        ];
        for (name, frames, want, last) in cases {
            let mut tr = Tracker::new(Rule::default());
            let steps = run(&mut tr, t0(), &frames);
            assert_eq!(confirms(&steps), want, "{name}");
            assert_eq!(*steps.last().expect("steps"), last, "{name}: {steps:?}");
        }
    }

    #[test]
    fn standing_on_keeps_the_result_on_every_frame() {
        let mut tr = Tracker::new(Rule::default());
        let steps = run(&mut tr, t0(), &vec![m(1); 12]);
        assert!(
            steps[3..]
                .iter()
                .all(|s| *s == Step::Cooldown(ResidentId(1))),
            "{steps:?}"
        );
    }

    #[test]
    fn cooldown_expires_with_the_clock() {
        let mut tr = Tracker::new(Rule::default());
        let steps = run(&mut tr, t0(), &[m(1), m(1), m(1)]);
        assert_eq!(confirms(&steps), vec![1]);
        // 9 s later: still cooling down
        let s = run(
            &mut tr,
            t0() + chrono::Duration::seconds(9),
            &[Frame::NoFace, m(1), m(1), m(1)],
        );
        assert_eq!(confirms(&s), Vec::<i64>::new());
        assert_eq!(s[3], Step::Cooldown(ResidentId(1)));
        // 11 s later: a new confirmation (the domain's duplicate rule then refuses the meal)
        let s = run(
            &mut tr,
            t0() + chrono::Duration::seconds(11),
            &[m(1), m(1), m(1)],
        );
        assert_eq!(confirms(&s), vec![1]);
    }

    #[test]
    fn confirmation_reports_the_fused_score_and_lowest_liveness() {
        let mut tr = Tracker::new(Rule::default());
        let f = |e: Vec<f32>, l| {
            Frame::Live(LiveFrame {
                embedding: e,
                weight: 1.0,
                liveness: l,
                yaw: 0.0,
            })
        };
        let steps = run(
            &mut tr,
            t0(),
            &[
                f(vec![0.8, 0.6, 0.0, 0.0], 0.99),
                f(vec![0.8, -0.6, 0.0, 0.0], 0.98),
                f(vec![1.0, 0.0, 0.0, 0.0], 0.995),
            ],
        );
        match steps[2] {
            Step::Confirm {
                resident,
                score,
                liveness,
            } => {
                assert_eq!(resident, ResidentId(1));
                // the mean of the three points straight at resident 1
                assert!((score - 1.0).abs() < 1e-5, "{score}");
                assert!((liveness - 0.98).abs() < 1e-6);
            }
            other => panic!("expected a confirmation, got {other:?}"),
        }
    }

    #[test]
    fn a_borderline_still_face_is_asked_to_turn_and_then_refused() {
        let mut tr = Tracker::new(Rule::default());
        let frames: Vec<Frame> = (0..40).map(|_| live(1, 0.8, 2.0)).collect();
        let steps = run(&mut tr, t0(), &frames);
        assert_eq!(steps[2], Step::Challenge);
        assert!(steps.contains(&Step::Refused), "{steps:?}");
        assert!(confirms(&steps).is_empty());
        // a live elder turning the head is settled
        let mut tr = Tracker::new(Rule::default());
        let yaws = [0.0, 1.0, 0.0, 8.0, 14.0, 16.0];
        let frames: Vec<Frame> = yaws.iter().map(|y| live(1, 0.8, *y)).collect();
        let steps = run(&mut tr, t0(), &frames);
        assert_eq!(steps[3], Step::Challenge);
        assert_eq!(confirms(&steps), vec![1]);
    }
}
