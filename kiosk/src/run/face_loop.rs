//! The face loop, on its own OS thread: frame → pipeline → gallery match → tracker → on
//! confirmation [`Counter::checkin`]; between frames it serves enrolment captures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use image::RgbImage;

use crate::checkin::{Frame, How, Rule, Step, Tracker};
use crate::screen::{FaceBox, Mode, Preview, ScreenState};
use crate::source::FrameSource;
use crate::sync::{GallerySlot, publish};
use zhucan_face::visit::{LiveFrame, quality_weight};
use zhucan_face::{self as face, FacePipeline, Outcome};

use super::*;

/// The face loop's state (lives on its own thread).
pub(super) struct FaceLoop {
    pub(super) counter: Counter,
    pub(super) gallery: GallerySlot,
    pub(super) preview: Preview,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) rule: Rule,
}

pub(super) fn face_box(res: &face::FrameResult, img: &RgbImage) -> Option<FaceBox> {
    res.face.map(|d| FaceBox {
        x: d.bbox[0],
        y: d.bbox[1],
        w: d.bbox[2],
        h: d.bbox[3],
        frame_w: img.width(),
        frame_h: img.height(),
    })
}

pub(super) fn jpeg(img: &RgbImage) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 70)
        .encode_image(img)
        .ok()?;
    Some(buf)
}

/// An enrolment in progress: the good live frames so far, as templates (flip-averaged) with
/// their yaw.
pub(super) struct Enrolling {
    req: EnrolRequest,
    got: Vec<(Vec<f32>, f32)>,
    tries: usize,
}

/// Yaw, degrees, by which enrolment frames should differ from each other.
const ENROL_POSE_STEP: f32 = 4.0;

/// Frames (about 3 s) enrolment waits for several poses before it takes what it has.
const ENROL_VARIETY_FRAMES: usize = 45;

/// Good frames kept to choose from.
const ENROL_KEEP: usize = 30;

impl Enrolling {
    /// Whether to keep a good live frame (`e`: its embedding as a frame): it must show the same
    /// face as the first one kept.
    fn wants(&self, e: &[f32]) -> bool {
        self.got.len() < ENROL_KEEP
            && self.got.first().is_none_or(|(t, _)| {
                face::matcher::dot_f32(t, e) >= face::visit::TEMPLATE_AGREEMENT
            })
    }

    /// The reply once the enrolment is over: the templates, or why nothing was enrolled.
    fn outcome(&mut self) -> Option<Result<Vec<Vec<f32>>, String>> {
        if let Some(pick) = self.ready() {
            let templates: Vec<Vec<f32>> = pick
                .into_iter()
                .map(|i| std::mem::take(&mut self.got[i].0))
                .collect();
            return Some(match face::visit::agreement(&templates) {
                Some((s, _, _)) if s < face::visit::TEMPLATE_AGREEMENT => Err(format!(
                    "采集的人脸彼此不一致（相似度 {s:.2}），未登记，请只让老人一人面对摄像头后重试 / \
                     the captured faces disagree (similarity {s:.2}): nothing enrolled; retry with \
                     only the resident in front of the camera"
                )),
                _ => Ok(templates),
            });
        }
        (self.tries >= ENROL_BUDGET).then(|| {
            let n = self.got.len();
            Err(format!(
                "只采集到{n}张合格的活体人脸，请重试 / only {n} good live frames, try again"
            ))
        })
    }

    /// The frames to enrol once there are enough: `ENROL_FRAMES` of distinct poses, or after
    /// the wait for variety as many as there are, or at the end of the budget at least
    /// `ENROL_MIN`.
    fn ready(&self) -> Option<Vec<usize>> {
        let yaws: Vec<f32> = self.got.iter().map(|g| g.1).collect();
        let pick = face::visit::pick_diverse(&yaws, ENROL_FRAMES, ENROL_POSE_STEP);
        let distinct = pick.iter().enumerate().all(|(i, &a)| {
            pick[..i]
                .iter()
                .all(|&b| (yaws[a] - yaws[b]).abs() >= ENROL_POSE_STEP)
        });
        let enough = pick.len() >= ENROL_FRAMES;
        (enough && (distinct || self.tries >= ENROL_VARIETY_FRAMES)
            || self.tries >= ENROL_BUDGET && pick.len() >= ENROL_MIN)
            .then_some(pick)
    }
}

/// What a processed frame means for the tracker.
pub fn observe(res: face::FrameResult) -> Frame {
    match (res.outcome, &res.quality) {
        (Outcome::NoFace, _) => Frame::NoFace,
        (Outcome::Rejected(r), _) => Frame::Poor(r),
        (Outcome::Spoof, _) => Frame::Spoof,
        (Outcome::Embedded(embedding), q) => Frame::Live(LiveFrame {
            embedding,
            weight: q.as_ref().map_or(1.0, quality_weight),
            liveness: res.liveness.as_ref().map_or(0.0, |l| l.prob[1]),
            yaw: q.as_ref().map_or(0.0, |q| q.pose.yaw),
        }),
    }
}

impl FaceLoop {
    pub(super) fn run(
        self,
        mut pipeline: FacePipeline,
        mut source: Box<dyn FrameSource>,
        enrol_rx: std::sync::mpsc::Receiver<EnrolRequest>,
    ) {
        let matching = pipeline.config().matching;
        let mut tracker = Tracker::new(self.rule);
        let mut enrolling: Option<Enrolling> = None;
        while !self.stop.load(Ordering::SeqCst) {
            if enrolling.is_none()
                && let Ok(req) = enrol_rx.try_recv()
            {
                self.counter.show_result(
                    Mode::Operator,
                    "人脸登记：请正对摄像头，再慢慢向左、向右转一点头",
                    "Enrolment: look at the camera, then turn your head slowly a little left and right",
                    None,
                );
                enrolling = Some(Enrolling {
                    req,
                    got: Vec::new(),
                    tries: 0,
                });
            }
            let frame = match source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    if let Some(e) = enrolling.as_mut() {
                        e.tries += 1;
                    }
                    enrolling = self.finish_enrol(enrolling);
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "frame source");
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            self.preview.set(jpeg(&frame));
            let res = match pipeline.process(&frame) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "face pipeline");
                    continue;
                }
            };
            let fb = face_box(&res, &frame);
            if let Some(en) = enrolling.as_mut() {
                en.tries += 1;
                if let Outcome::Embedded(e) = &res.outcome {
                    let yaw = res.quality.as_ref().map_or(0.0, |q| q.pose.yaw);
                    if en.wants(e) {
                        match pipeline.template_of_last_frame() {
                            Ok(t) => en.got.push((t, yaw)),
                            Err(e) => tracing::error!(error = %e, "enrolment template"),
                        }
                    }
                }
                publish(&self.counter.screen, |s| s.face = fb);
                enrolling = self.finish_enrol(enrolling);
                continue;
            }
            let gallery = self.gallery.get();
            let step = tracker.observe(observe(res), self.counter.clock.now(), &gallery, &matching);
            // the confirming frame was embedded, so the pipeline's crop is this face
            let photo = match step {
                Step::Confirm { .. } if self.counter.keeps_evidence() => jpeg(pipeline.aligned()),
                _ => None,
            };
            self.show(step, fb, photo);
        }
        if let Some(en) = enrolling {
            let _ = en.req.reply.send(Err("kiosk stopping".into()));
        }
    }

    /// Replies to a finished enrolment (enough frames or out of budget); keeps it otherwise.
    fn finish_enrol(&self, enrolling: Option<Enrolling>) -> Option<Enrolling> {
        let mut en = enrolling?;
        match en.outcome() {
            Some(reply) => {
                let _ = en.req.reply.send(reply);
                None
            }
            None => Some(en),
        }
    }

    fn show(&self, step: Step, fb: Option<FaceBox>, photo: Option<Vec<u8>>) {
        let c = &self.counter;
        match step {
            Step::Idle => {
                let idle = ScreenState::idle("");
                c.show_transient(Mode::Idle, &idle.message_zh, &idle.message_en, None, None);
            }
            Step::Guiding(r) => c.show_transient(
                Mode::Guiding,
                r.message_zh(),
                r.message_en(),
                Some(r.code()),
                fb,
            ),
            Step::Checking { .. } => c.show_transient(
                Mode::Checking,
                "正在识别，请稍候",
                "Checking, please hold still",
                None,
                fb,
            ),
            Step::Challenge => c.show_transient(
                Mode::Guiding,
                "请慢慢向左或向右转一下头",
                "Please turn your head slowly to one side",
                Some("turn_head"),
                fb,
            ),
            Step::Refused => {
                c.show_result(
                    Mode::Spoof,
                    "未能确认是本人，请找工作人员",
                    "Could not confirm it is you — please see staff",
                    None,
                );
                publish(&c.screen, |s| s.face = fb);
            }
            Step::Cooldown(_) => publish(&c.screen, |s| s.face = fb),
            Step::Unknown => {
                c.show_result(
                    Mode::Unknown,
                    "未识别，请找工作人员",
                    "Not recognised — please see staff",
                    None,
                );
                publish(&c.screen, |s| s.face = fb);
            }
            Step::Spoof => {
                c.show_result(
                    Mode::Spoof,
                    "请本人刷脸",
                    "Not a live face — please look at the camera yourself",
                    None,
                );
                publish(&c.screen, |s| s.face = fb);
            }
            Step::Confirm {
                resident,
                score,
                liveness,
            } => {
                if let Err(e) = c.checkin(resident, How::Face { score, liveness }, photo) {
                    tracing::warn!(resident = resident.0, error = %e, "face check-in failed");
                    let e = e.to_string();
                    c.show_result(Mode::Unknown, &e, &e, None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrolling(got: Vec<(Vec<f32>, f32)>, tries: usize) -> Enrolling {
        let (reply, _) = tokio::sync::oneshot::channel();
        Enrolling {
            req: EnrolRequest { reply },
            got,
            tries,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn enrolment_takes_five_poses_at_once_or_waits_for_them() {
        let face = |yaw| (unit(&[1.0, 0.05 * yaw, 0.0]), yaw);
        // five poses 4 degrees or more apart: done now
        let mut en = enrolling((0..5).map(|i| face(i as f32 * 4.0)).collect(), 6);
        assert_eq!(en.outcome().map(|r| r.map(|t| t.len())), Some(Ok(5)));
        // five frames of one pose: keep waiting for a turn, then take them
        let mut en = enrolling((0..5).map(|_| face(0.0)).collect(), 6);
        assert_eq!(en.outcome(), None);
        en.tries = ENROL_VARIETY_FRAMES;
        assert_eq!(en.outcome().map(|r| r.map(|t| t.len())), Some(Ok(5)));
        // too few good frames by the end of the budget
        let mut en = enrolling(vec![face(0.0), face(5.0)], ENROL_BUDGET);
        assert!(matches!(en.outcome(), Some(Err(e)) if e.contains("only 2")));
    }

    #[test]
    fn a_capture_whose_faces_disagree_enrols_nothing() {
        // what `wants` lets through is checked against the first frame only; two faces that each
        // resemble the first but not each other still fail the whole capture
        let a = unit(&[1.0, 0.9, 0.0]);
        let b = unit(&[1.0, -0.9, 0.0]);
        let got = vec![
            (unit(&[1.0, 0.0, 0.0]), 0.0),
            (a.clone(), 4.0),
            (b, 8.0),
            (a.clone(), 12.0),
            (a, 16.0),
        ];
        let mut en = enrolling(got, 6);
        match en.outcome() {
            Some(Err(e)) => assert!(e.contains("disagree"), "{e}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
