//! Frame confirmation, pure: per-frame observations go into a [`Tracker`] that confirms a
//! resident only when the same resident wins `k` of the last `n` frames, every one of them live
//! (a frame is only embedded and matched after it passed liveness) and no spoof frame in the
//! window; then a per-resident cooldown keeps an elder standing at the counter from being charged
//! twice. Unknown faces and spoofs never settle anything; they only change what the screen says.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use zhucan_domain::ResidentId;
use zhucan_face::quality::Reason;

/// The confirmation rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Frames the same resident must win...
    pub k: usize,
    /// ...out of the last `n` frames.
    pub n: usize,
    /// No second settlement for the same resident by face within this time.
    pub cooldown: chrono::Duration,
    /// Unknown frames in the window before the screen says "unknown".
    pub unknown_after: usize,
    /// Non-live frames in the window before the screen says "not a live face".
    pub spoof_after: usize,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            k: 3,
            n: 5,
            cooldown: chrono::Duration::seconds(10),
            unknown_after: 3,
            spoof_after: 2,
        }
    }
}

/// What one frame showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Frame {
    NoFace,
    /// The quality gate refused the frame.
    Poor(Reason),
    /// A face that is not live.
    Spoof,
    /// A live face that matches nobody.
    Unknown,
    /// A live face matched to a resident.
    Match {
        resident: ResidentId,
        score: f32,
        liveness: f32,
    },
}

/// What the screen should do after a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Idle,
    Guiding(Reason),
    /// A resident leads, `votes` of the `k` needed.
    Checking {
        resident: ResidentId,
        votes: usize,
    },
    Unknown,
    Spoof,
    /// Settle for this resident now (face method).
    Confirm {
        resident: ResidentId,
        score: f32,
        liveness: f32,
    },
    /// The resident was settled moments ago: keep the result on screen, settle nothing.
    Cooldown(ResidentId),
}

/// The sliding window of recent frames and the cooldowns.
#[derive(Debug, Clone)]
pub struct Tracker {
    rule: Rule,
    window: VecDeque<Frame>,
    until: HashMap<ResidentId, DateTime<Utc>>,
}

impl Tracker {
    pub fn new(rule: Rule) -> Tracker {
        Tracker {
            rule,
            window: VecDeque::with_capacity(rule.n),
            until: HashMap::new(),
        }
    }

    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Feeds one frame observed at `now`.
    pub fn observe(&mut self, frame: Frame, now: DateTime<Utc>) -> Step {
        self.until.retain(|_, t| *t > now);
        if frame == Frame::NoFace {
            // nobody there: the next face is a new person
            self.window.clear();
            return Step::Idle;
        }
        if self.window.len() == self.rule.n.max(1) {
            self.window.pop_front();
        }
        self.window.push_back(frame);
        let spoofs = self
            .window
            .iter()
            .filter(|f| matches!(f, Frame::Spoof))
            .count();
        if let Frame::Match { resident, .. } = frame {
            if self.until.contains_key(&resident) {
                return Step::Cooldown(resident);
            }
            let wins: Vec<(f32, f32)> = self
                .window
                .iter()
                .filter_map(|f| match f {
                    Frame::Match {
                        resident: r,
                        score,
                        liveness,
                    } if *r == resident => Some((*score, *liveness)),
                    _ => None,
                })
                .collect();
            if wins.len() >= self.rule.k && spoofs == 0 {
                let n = wins.len() as f32;
                let score = wins.iter().map(|w| w.0).sum::<f32>() / n;
                let liveness = wins.iter().map(|w| w.1).fold(f32::INFINITY, f32::min);
                self.window.clear();
                self.until.insert(resident, now + self.rule.cooldown);
                return Step::Confirm {
                    resident,
                    score,
                    liveness,
                };
            }
            if spoofs >= self.rule.spoof_after {
                return Step::Spoof;
            }
            return Step::Checking {
                resident,
                votes: wins.len(),
            };
        }
        if spoofs >= self.rule.spoof_after {
            return Step::Spoof;
        }
        let unknown = self
            .window
            .iter()
            .filter(|f| matches!(f, Frame::Unknown))
            .count();
        match frame {
            Frame::Unknown if unknown >= self.rule.unknown_after => Step::Unknown,
            Frame::Poor(r) => Step::Guiding(r),
            Frame::Spoof | Frame::Unknown => Step::Checking {
                resident: ResidentId(0),
                votes: 0,
            },
            Frame::NoFace | Frame::Match { .. } => Step::Idle,
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

    fn m(r: i64) -> Frame {
        Frame::Match {
            resident: ResidentId(r),
            score: 0.8,
            liveness: 0.99,
        }
    }

    /// Feeds frames 100 ms apart; returns the steps.
    fn run(tr: &mut Tracker, start: DateTime<Utc>, frames: &[Frame]) -> Vec<Step> {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| tr.observe(*f, start + chrono::Duration::milliseconds(100 * i as i64)))
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
        use Frame::{NoFace, Spoof, Unknown};
        let poor = Frame::Poor(Reason::TooSmall);
        let conf = |r| Step::Confirm {
            resident: ResidentId(r),
            score: 0.8,
            liveness: 0.99,
        };
        let cases: Vec<(&str, Vec<Frame>, Vec<i64>, Step)> = vec![
            (
                "three wins confirm on the third",
                vec![m(1), m(1), m(1)],
                vec![1],
                conf(1),
            ),
            (
                "two wins are not enough",
                vec![m(1), m(1)],
                vec![],
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 2,
                },
            ),
            (
                "3 of 5 with noise",
                vec![m(1), Unknown, m(2), m(1), m(1)],
                vec![1],
                conf(1),
            ),
            (
                "wins spread over more than 5 frames",
                vec![m(1), Unknown, Unknown, Unknown, m(1), Unknown, m(1)],
                vec![],
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 2,
                },
            ),
            (
                "a spoof in the window blocks",
                vec![m(1), Spoof, m(1), m(1)],
                vec![],
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 3,
                },
            ),
            (
                "persisting spoof",
                vec![Spoof, Spoof, Spoof],
                vec![],
                Step::Spoof,
            ),
            (
                "three unknown frames",
                vec![Unknown, Unknown, Unknown],
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
                Step::Checking {
                    resident: ResidentId(1),
                    votes: 1,
                },
            ),
            (
                "standing on: one settlement",
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
            assert_eq!(*steps.last().expect("steps"), last, "{name}");
        }
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
            &[m(1), m(1), m(1)],
        );
        assert_eq!(confirms(&s), Vec::<i64>::new());
        // 11 s later: a new confirmation (the domain's duplicate rule then refuses the meal)
        let s = run(
            &mut tr,
            t0() + chrono::Duration::seconds(11),
            &[m(1), m(1), m(1)],
        );
        assert_eq!(confirms(&s), vec![1]);
    }

    #[test]
    fn confirmation_reports_mean_score_and_lowest_liveness() {
        let mut tr = Tracker::new(Rule::default());
        let f = |s, l| Frame::Match {
            resident: ResidentId(5),
            score: s,
            liveness: l,
        };
        let steps = run(&mut tr, t0(), &[f(0.7, 0.9), f(0.8, 0.8), f(0.9, 0.95)]);
        match steps[2] {
            Step::Confirm {
                score, liveness, ..
            } => {
                assert!((score - 0.8).abs() < 1e-6);
                assert!((liveness - 0.8).abs() < 1e-6);
            }
            other => panic!("expected a confirmation, got {other:?}"),
        }
    }
}
