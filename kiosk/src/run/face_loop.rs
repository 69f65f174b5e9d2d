//! The face loop, on its own OS thread: frame → pipeline → gallery match → tracker → on
//! confirmation [`Counter::checkin`]; between frames it serves enrolment captures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use image::RgbImage;
use zhucan_domain::ResidentId;

use crate::checkin::{Frame, How, Rule, Step, Tracker};
use crate::screen::{FaceBox, Mode, Preview, ScreenState};
use crate::source::FrameSource;
use crate::sync::{GallerySlot, publish};
use zhucan_face::matcher::{Identification, MatchConfig};
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

/// What a processed frame means for the tracker.
pub fn observe(
    res: &face::FrameResult,
    gallery: &face::matcher::Gallery,
    m: &MatchConfig,
) -> Frame {
    let live = res.liveness.as_ref().map_or(0.0, |l| l.prob[1]);
    match &res.outcome {
        Outcome::NoFace => Frame::NoFace,
        Outcome::Rejected(r) => Frame::Poor(*r),
        Outcome::Spoof => Frame::Spoof,
        Outcome::Embedded(_) => match res.identify(gallery, m) {
            Some(Identification::Match {
                resident, score, ..
            }) => match resident.parse() {
                Ok(id) => Frame::Match {
                    resident: ResidentId(id),
                    score,
                    liveness: live,
                },
                Err(_) => Frame::Unknown,
            },
            _ => Frame::Unknown,
        },
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
        let mut enrolling: Option<(EnrolRequest, Vec<Vec<f32>>, usize)> = None;
        while !self.stop.load(Ordering::SeqCst) {
            if enrolling.is_none()
                && let Ok(req) = enrol_rx.try_recv()
            {
                self.counter.show_result(
                    Mode::Operator,
                    "人脸登记：请正对摄像头",
                    "Enrolment: please look at the camera",
                    None,
                );
                enrolling = Some((req, Vec::new(), 0));
            }
            let frame = match source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    if let Some((_, _, tries)) = enrolling.as_mut() {
                        *tries += 1;
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
            if let Some((_, got, tries)) = enrolling.as_mut() {
                *tries += 1;
                if let Outcome::Embedded(e) = &res.outcome {
                    // all frames must show the same face as the first good one
                    let same = got
                        .first()
                        .is_none_or(|f| face::matcher::dot_f32(f, e) >= 0.5);
                    if same {
                        got.push(e.clone());
                    }
                }
                publish(&self.counter.screen, |s| s.face = fb);
                enrolling = self.finish_enrol(enrolling);
                continue;
            }
            let gallery = self.gallery.get();
            let obs = observe(&res, &gallery, &matching);
            let step = tracker.observe(obs, self.counter.clock.now());
            // the confirming frame was embedded, so the pipeline's crop is this face
            let photo = match step {
                Step::Confirm { .. } if self.counter.keeps_evidence() => jpeg(pipeline.aligned()),
                _ => None,
            };
            self.show(step, fb, photo);
        }
        if let Some((req, _, _)) = enrolling {
            let _ = req.reply.send(Err("kiosk stopping".into()));
        }
    }

    /// Replies to a finished enrolment (enough frames or out of budget); keeps it otherwise.
    fn finish_enrol(
        &self,
        enrolling: Option<(EnrolRequest, Vec<Vec<f32>>, usize)>,
    ) -> Option<(EnrolRequest, Vec<Vec<f32>>, usize)> {
        let (req, got, tries) = enrolling?;
        if got.len() >= ENROL_FRAMES || (tries >= ENROL_BUDGET && got.len() >= ENROL_MIN) {
            let _ = req.reply.send(Ok(got));
            None
        } else if tries >= ENROL_BUDGET {
            let _ = req.reply.send(Err(format!(
                "只采集到{}张合格的活体人脸，请重试 / only {} good live frames, try again",
                got.len(),
                got.len()
            )));
            None
        } else {
            Some((req, got, tries))
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
