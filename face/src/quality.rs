//! The quality gate: cheap checks on the detected face before liveness and recognition, each
//! rejection carrying a reason the kiosk can say to the resident (Chinese first, English too).
//!
//! - **size**: the shorter side of the face box in pixels;
//! - **position**: the box must lie inside the frame (a face cut by the edge gives a bad crop);
//! - **brightness**: mean luma (BT.601) over the face box;
//! - **sharpness**: variance of the 4-neighbour Laplacian of the luma over the face box (blur and
//!   motion lower it);
//! - **head pose**: yaw, pitch and roll in degrees estimated from the five landmarks (see
//!   [`head_pose`]) — rough, but enough to ask the resident to face the screen.
//!
//! Defaults ([`QualityConfig::default`]) are documented in the face README with how they were
//! chosen.

use image::RgbImage;

use super::detect::Detection;

/// Why a frame was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    NoFace,
    TooSmall,
    OutOfFrame,
    TooDark,
    TooBright,
    Blurry,
    NotFrontal,
}

impl Reason {
    /// What the kiosk says, in Chinese.
    pub fn message_zh(self) -> &'static str {
        match self {
            Reason::NoFace => "请站到摄像头前",
            Reason::TooSmall => "请靠近一点",
            Reason::OutOfFrame => "请站到画面中间",
            Reason::TooDark => "光线太暗",
            Reason::TooBright => "光线太亮",
            Reason::Blurry => "请保持不动",
            Reason::NotFrontal => "请正对屏幕",
        }
    }

    /// The same in English.
    pub fn message_en(self) -> &'static str {
        match self {
            Reason::NoFace => "Please stand in front of the camera",
            Reason::TooSmall => "Please come closer",
            Reason::OutOfFrame => "Please move to the middle of the picture",
            Reason::TooDark => "Too dark",
            Reason::TooBright => "Too bright",
            Reason::Blurry => "Please hold still",
            Reason::NotFrontal => "Please face the screen",
        }
    }

    /// A stable machine name (`too_small`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Reason::NoFace => "no_face",
            Reason::TooSmall => "too_small",
            Reason::OutOfFrame => "out_of_frame",
            Reason::TooDark => "too_dark",
            Reason::TooBright => "too_bright",
            Reason::Blurry => "blurry",
            Reason::NotFrontal => "not_frontal",
        }
    }
}

/// Limits of the quality gate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityConfig {
    /// Minimum shorter side of the face box, pixels.
    pub min_face_px: f32,
    /// How far (pixels) the box may stick out of the frame.
    pub edge_tolerance_px: f32,
    pub min_brightness: f32,
    pub max_brightness: f32,
    /// Minimum variance of the Laplacian of the face luma.
    pub min_sharpness: f32,
    pub max_yaw_deg: f32,
    pub max_pitch_deg: f32,
    pub max_roll_deg: f32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_face_px: 80.0,
            edge_tolerance_px: 8.0,
            min_brightness: 40.0,
            max_brightness: 215.0,
            min_sharpness: 15.0,
            max_yaw_deg: 30.0,
            max_pitch_deg: 30.0,
            max_roll_deg: 25.0,
        }
    }
}

/// Head pose in degrees: yaw (+ = the face turned toward image right), pitch (+ = chin up),
/// roll (+ = clockwise in the image).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadPose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

/// Everything the gate measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityReport {
    pub face_px: f32,
    pub brightness: f32,
    pub sharpness: f32,
    pub pose: HeadPose,
    /// The first failed check, if any (checked in the order size, position, brightness, pose,
    /// sharpness).
    pub rejection: Option<Reason>,
}

/// Ratio (nose below the eye line) / (mouth below the eye line) of a frontal face *as YuNet
/// places the landmarks*: 0.57, the median over the frontal live webcam frames of the dev set
/// (`eval quality`). YuNet's nose tip sits lower than the ArcFace template's (0.495), which read
/// every frontal face as ~10 degrees "chin down".
const FRONTAL_NOSE_RATIO: f32 = 0.57;

/// Head pose from the 5 landmarks (eyes, nose, mouth corners).
///
/// Roll is the angle of the eye line. In the roll-corrected frame, yaw comes from the nose's
/// horizontal offset from the eye midpoint relative to the eye distance (the nose tip stands about
/// half an eye distance in front of the eye plane: `yaw = atan(2 * offset / eye_dist)`), and pitch
/// from where the nose sits between the eye line and the mouth line compared with a frontal face
/// (`pitch = atan(2.3 * (r0 - r))`, the mouth being ~1.15 eye distances below the eyes). These are
/// approximations good to ~10 degrees, enough for a "face the screen" prompt.
pub fn head_pose(l: &[[f32; 2]; 5]) -> HeadPose {
    let (re, le, nose, rm, lm) = (l[0], l[1], l[2], l[3], l[4]);
    let dx = le[0] - re[0];
    let dy = le[1] - re[1];
    let roll = dy.atan2(dx);
    let (c, s) = (roll.cos(), roll.sin());
    // rotate by -roll about the eye midpoint
    let mid = [(re[0] + le[0]) / 2.0, (re[1] + le[1]) / 2.0];
    let rot = |p: [f32; 2]| {
        let (x, y) = (p[0] - mid[0], p[1] - mid[1]);
        [c * x + s * y, -s * x + c * y]
    };
    let eye_dist = (dx * dx + dy * dy).sqrt().max(1e-3);
    let n = rot(nose);
    let m = {
        let (a, b) = (rot(rm), rot(lm));
        [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
    };
    let yaw = (2.0 * n[0] / eye_dist).atan();
    let mouth_y = m[1].max(1e-3);
    let r = n[1] / mouth_y;
    let pitch = (2.3 * (FRONTAL_NOSE_RATIO - r)).atan();
    HeadPose {
        yaw: yaw.to_degrees(),
        pitch: pitch.to_degrees(),
        roll: roll.to_degrees(),
    }
}

/// Mean luma and variance of the Laplacian over a box (clipped to the image).
pub fn brightness_and_sharpness(img: &RgbImage, bbox: &[f32; 4]) -> (f32, f32) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let x0 = (bbox[0].floor() as i64).clamp(0, iw);
    let y0 = (bbox[1].floor() as i64).clamp(0, ih);
    let x1 = ((bbox[0] + bbox[2]).ceil() as i64).clamp(0, iw);
    let y1 = ((bbox[1] + bbox[3]).ceil() as i64).clamp(0, ih);
    let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
    if w < 3 || h < 3 {
        return (0.0, 0.0);
    }
    let raw = img.as_raw();
    let stride = iw as usize * 3;
    let mut luma = vec![0f32; w * h];
    for y in 0..h {
        let row = &raw[(y0 as usize + y) * stride + x0 as usize * 3..][..w * 3];
        for x in 0..w {
            let p = &row[x * 3..x * 3 + 3];
            luma[y * w + x] = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
        }
    }
    let mean = luma.iter().map(|&v| v as f64).sum::<f64>() / (w * h) as f64;
    (mean as f32, laplacian_variance(&luma, w, h))
}

/// Variance of the 4-neighbour Laplacian over the interior of a grey image.
pub fn laplacian_variance(grey: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut sum, mut sum2, mut n) = (0.0f64, 0.0f64, 0usize);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let l = grey[i - 1] + grey[i + 1] + grey[i - w] + grey[i + w] - 4.0 * grey[i];
            sum += l as f64;
            sum2 += (l as f64) * (l as f64);
            n += 1;
        }
    }
    let mean = sum / n as f64;
    (sum2 / n as f64 - mean * mean) as f32
}

/// Runs the gate on a detected face.
pub fn assess(img: &RgbImage, det: &Detection, cfg: &QualityConfig) -> QualityReport {
    let face_px = det.bbox[2].min(det.bbox[3]);
    let (brightness, sharpness) = brightness_and_sharpness(img, &det.bbox);
    let pose = head_pose(&det.landmarks);
    let t = cfg.edge_tolerance_px;
    let out_of_frame = det.bbox[0] < -t
        || det.bbox[1] < -t
        || det.bbox[0] + det.bbox[2] > img.width() as f32 + t
        || det.bbox[1] + det.bbox[3] > img.height() as f32 + t;
    let rejection = if face_px < cfg.min_face_px {
        Some(Reason::TooSmall)
    } else if out_of_frame {
        Some(Reason::OutOfFrame)
    } else if brightness < cfg.min_brightness {
        Some(Reason::TooDark)
    } else if brightness > cfg.max_brightness {
        Some(Reason::TooBright)
    } else if pose.yaw.abs() > cfg.max_yaw_deg
        || pose.pitch.abs() > cfg.max_pitch_deg
        || pose.roll.abs() > cfg.max_roll_deg
    {
        Some(Reason::NotFrontal)
    } else if sharpness < cfg.min_sharpness {
        Some(Reason::Blurry)
    } else {
        None
    };
    QualityReport {
        face_px,
        brightness,
        sharpness,
        pose,
        rejection,
    }
}

#[cfg(test)]
mod tests {
    use super::super::align::ARCFACE_112;
    use super::*;

    #[test]
    fn frontal_face_has_zero_pose() {
        // the ArcFace template with the nose where YuNet puts it on frontal faces
        let mut frontal = ARCFACE_112;
        frontal[2][1] = 51.599 + FRONTAL_NOSE_RATIO * (92.2848 - 51.599);
        let p = head_pose(&frontal);
        assert!(
            p.yaw.abs() < 1.0 && p.pitch.abs() < 0.5 && p.roll.abs() < 1.0,
            "{p:?}"
        );
        // the template itself reads as slightly chin-up, well inside the limits
        let p = head_pose(&ARCFACE_112);
        assert!(p.pitch > 5.0 && p.pitch < 15.0, "{p:?}");
    }

    #[test]
    fn rotated_and_turned_faces() {
        // rotate the template 30 degrees about its centre: roll = 30, yaw/pitch unchanged
        let a = 30f32.to_radians();
        let rot = ARCFACE_112.map(|p| {
            let (x, y) = (p[0] - 56.0, p[1] - 70.0);
            [
                56.0 + a.cos() * x - a.sin() * y,
                70.0 + a.sin() * x + a.cos() * y,
            ]
        });
        let p = head_pose(&rot);
        assert!((p.roll - 30.0).abs() < 1.0 && p.yaw.abs() < 2.0, "{p:?}");
        // nose shifted right by a third of the eye distance: clearly turned
        let mut turned = ARCFACE_112;
        turned[2][0] += 12.0;
        assert!(head_pose(&turned).yaw > 25.0);
        // nose close to the eye line: chin up
        let mut up = ARCFACE_112;
        up[2][1] -= 12.0;
        assert!(head_pose(&up).pitch > 20.0);
        let mut down = ARCFACE_112;
        down[2][1] += 12.0;
        assert!(head_pose(&down).pitch < -20.0);
    }

    #[test]
    fn laplacian_variance_of_flat_and_checkerboard() {
        assert_eq!(laplacian_variance(&[7.0; 25], 5, 5), 0.0);
        let cb: Vec<f32> = (0..25)
            .map(|i| if (i % 5 + i / 5) % 2 == 0 { 0.0 } else { 100.0 })
            .collect();
        assert!(laplacian_variance(&cb, 5, 5) > 1000.0);
    }

    #[test]
    fn gate_reasons() {
        let img = RgbImage::from_pixel(200, 200, image::Rgb([20, 20, 20]));
        let mut d = Detection {
            bbox: [50.0, 50.0, 100.0, 100.0],
            landmarks: ARCFACE_112,
            score: 0.9,
            stride: 8,
            anchor: 0,
        };
        let cfg = QualityConfig::default();
        assert_eq!(assess(&img, &d, &cfg).rejection, Some(Reason::TooDark));
        d.bbox[2] = 40.0;
        assert_eq!(assess(&img, &d, &cfg).rejection, Some(Reason::TooSmall));
        assert_eq!(Reason::TooSmall.message_zh(), "请靠近一点");
        assert_eq!(Reason::NotFrontal.message_zh(), "请正对屏幕");
    }
}
