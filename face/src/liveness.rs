//! Liveness (presentation-attack detection) with the two MiniFASNet models, exactly as the models
//! README and upstream Silent-Face-Anti-Spoofing do it:
//!
//! 1. take the detector box as integers `(x, y, w, h)` (truncation, like Python `int()`);
//! 2. `k = min((H-1)/h, (W-1)/w, scale)` (scale 2.7 and 4.0, from the manifest `crop_scale`);
//! 3. a `w*k` x `h*k` box centred on the face, shifted back inside the frame, cropped with
//!    inclusive ends;
//! 4. resized to the model input (80x80) with plain bilinear interpolation (OpenCV INTER_LINEAR,
//!    no antialiasing — see [`super::imgproc::resize_bilinear`]), BGR raw 0..255;
//! 5. the models' softmax outputs averaged.
//!
//! Decision: **live iff the averaged probability of the live class (index 1) is >= the
//! threshold**. The default threshold is 0.5, slightly stricter than upstream's "argmax == 1"
//! (which can accept a live probability as low as 0.34 when the two spoof classes split the rest);
//! on the dev set every live sample scores >= 0.83 and every spoof <= 0.2 (see the face README).

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use super::imgproc::{Roi, resize_bilinear, rgb_to_planes};
use super::manifest::{Manifest, ModelSpec};
use super::runtime::{self, SessionOptions};
use super::{Error, model_error};

/// Default live-probability threshold.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Crop box, inclusive ends: left, top, right, bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub left: u32,
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
}

impl CropBox {
    pub fn roi(&self) -> Roi {
        Roi {
            x: self.left,
            y: self.top,
            w: self.right - self.left + 1,
            h: self.bottom - self.top + 1,
        }
    }
}

/// The detector box as integers, like Python `int()` (truncation toward zero).
pub fn int_box(bbox: &[f32; 4]) -> [i64; 4] {
    [
        bbox[0] as i64,
        bbox[1] as i64,
        bbox[2] as i64,
        bbox[3] as i64,
    ]
}

/// Silent-Face `_get_new_box`: the scaled crop around an integer box in a `src_w` x `src_h`
/// image. Returns `None` for an empty box.
pub fn crop_box(src_w: u32, src_h: u32, b: [i64; 4], scale: f64) -> Option<CropBox> {
    let (x, y, bw, bh) = (b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64);
    if bw <= 0.0 || bh <= 0.0 || src_w == 0 || src_h == 0 {
        return None;
    }
    let (w, h) = (src_w as f64, src_h as f64);
    let k = ((h - 1.0) / bh).min((w - 1.0) / bw).min(scale);
    let (nw, nh) = (bw * k, bh * k);
    let (cx, cy) = (bw / 2.0 + x, bh / 2.0 + y);
    let (mut l, mut t) = (cx - nw / 2.0, cy - nh / 2.0);
    let (mut r, mut btm) = (cx + nw / 2.0, cy + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        btm -= t;
        t = 0.0;
    }
    if r > w - 1.0 {
        l -= r - w + 1.0;
        r = w - 1.0;
    }
    if btm > h - 1.0 {
        t -= btm - h + 1.0;
        btm = h - 1.0;
    }
    let clamp = |v: f64, max: f64| (v as i64).clamp(0, max as i64) as u32;
    let cb = CropBox {
        left: clamp(l, w - 1.0),
        top: clamp(t, h - 1.0),
        right: clamp(r, w - 1.0),
        bottom: clamp(btm, h - 1.0),
    };
    (cb.right >= cb.left && cb.bottom >= cb.top).then_some(cb)
}

/// Result of the liveness stage.
#[derive(Clone, Debug, PartialEq)]
pub struct LivenessScore {
    /// Averaged class probabilities (index 1 = live).
    pub prob: [f32; 3],
    /// Each model's probabilities, in manifest order.
    pub per_model: Vec<[f32; 3]>,
    pub live: bool,
}

/// Averages probability vectors.
pub fn average(probs: &[[f32; 3]]) -> [f32; 3] {
    let mut avg = [0.0f32; 3];
    for p in probs {
        for i in 0..3 {
            avg[i] += p[i];
        }
    }
    let n = probs.len().max(1) as f32;
    avg.map(|v| v / n)
}

struct Model {
    session: Session,
    spec: ModelSpec,
    scale: f64,
    live_index: usize,
    hw: (usize, usize),
}

/// The liveness models plus preallocated buffers.
pub struct Liveness {
    models: Vec<Model>,
    threshold: f32,
    patch: Vec<u8>,
    tensor: Vec<f32>,
}

impl Liveness {
    /// Loads every `liveness` model of the manifest.
    pub fn load(m: &Manifest, specs: &[&ModelSpec], opts: SessionOptions) -> Result<Self, Error> {
        let mut models = Vec::new();
        for spec in specs {
            let scale = spec
                .param_f64("crop_scale")
                .ok_or_else(|| model_error(spec, "manifest params lack crop_scale".into()))?;
            let hw = spec
                .fixed_hw()
                .ok_or_else(|| model_error(spec, "liveness input must have a fixed size".into()))?;
            let bytes = m.read_verified(spec)?;
            models.push(Model {
                session: runtime::session(&bytes, opts)?,
                spec: (*spec).clone(),
                scale,
                live_index: spec.param_f64("live_index").unwrap_or(1.0) as usize,
                hw,
            });
        }
        if models.is_empty() {
            return Err(Error::Manifest {
                path: m.dir.join(super::manifest::MANIFEST_FILE),
                line: 0,
                message: "no model with role liveness".into(),
            });
        }
        Ok(Self {
            models,
            threshold: DEFAULT_THRESHOLD,
            patch: Vec::new(),
            tensor: Vec::new(),
        })
    }

    pub fn set_threshold(&mut self, t: f32) {
        self.threshold = t;
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Number of models and their crop scales.
    pub fn scales(&self) -> Vec<f64> {
        self.models.iter().map(|m| m.scale).collect()
    }

    /// The crop box each model uses for a face box.
    pub fn crop_boxes(&self, img: &RgbImage, bbox: &[f32; 4]) -> Vec<Option<CropBox>> {
        let b = int_box(bbox);
        self.models
            .iter()
            .map(|m| crop_box(img.width(), img.height(), b, m.scale))
            .collect()
    }

    /// The resized patch for model `i` (RGB bytes, model input size) — for tests and debugging.
    pub fn patch(&self, img: &RgbImage, bbox: &[f32; 4], i: usize) -> Option<RgbImage> {
        let m = self.models.get(i)?;
        let cb = crop_box(img.width(), img.height(), int_box(bbox), m.scale)?;
        let (h, w) = m.hw;
        let mut buf = vec![0u8; w * h * 3];
        resize_bilinear(img, cb.roi(), w, h, &mut buf);
        RgbImage::from_raw(w as u32, h as u32, buf)
    }

    /// Scores a face box in a frame.
    pub fn check(&mut self, img: &RgbImage, bbox: &[f32; 4]) -> Result<LivenessScore, Error> {
        let b = int_box(bbox);
        let mut per_model = Vec::with_capacity(self.models.len());
        for i in 0..self.models.len() {
            let (scale, (h, w)) = (self.models[i].scale, self.models[i].hw);
            let cb = crop_box(img.width(), img.height(), b, scale)
                .ok_or_else(|| model_error(&self.models[i].spec, "empty face box".into()))?;
            self.patch.resize(w * h * 3, 0);
            resize_bilinear(img, cb.roi(), w, h, &mut self.patch);
            per_model.push(self.run_patch(i)?);
        }
        Ok(self.decide(per_model))
    }

    /// Scores ready-made patches (RGB, model input size), one per model — the fixture path.
    pub fn check_patches(&mut self, patches: &[RgbImage]) -> Result<LivenessScore, Error> {
        let mut per_model = Vec::with_capacity(self.models.len());
        for (i, p) in patches.iter().enumerate().take(self.models.len()) {
            let (h, w) = self.models[i].hw;
            if (p.width() as usize, p.height() as usize) != (w, h) {
                return Err(model_error(
                    &self.models[i].spec,
                    "patch has the wrong size".into(),
                ));
            }
            self.patch.clear();
            self.patch.extend_from_slice(p.as_raw());
            per_model.push(self.run_patch(i)?);
        }
        Ok(self.decide(per_model))
    }

    fn run_patch(&mut self, i: usize) -> Result<[f32; 3], Error> {
        let m = &mut self.models[i];
        let (h, w) = m.hw;
        self.tensor.resize(3 * w * h, 0.0);
        let (c, mean, std) = (m.spec.colour, m.spec.mean, m.spec.std);
        rgb_to_planes(&self.patch, w, h, w, h, c, mean, std, &mut self.tensor);
        let input = TensorRef::from_array_view(([1usize, 3, h, w], &self.tensor[..]))?;
        let outputs = m
            .session
            .run(ort::inputs![m.spec.input.as_str() => input])?;
        let out = &outputs[0];
        let probs = out.try_extract_tensor::<f32>()?.1;
        if probs.len() < 3 || m.live_index >= probs.len() {
            return Err(model_error(
                &m.spec,
                format!("expected 3 probabilities, got {}", probs.len()),
            ));
        }
        // Normalise to [spoof, live, spoof] order if a model puts "live" elsewhere.
        let mut p = [probs[0], probs[1], probs[2]];
        p.swap(1, m.live_index);
        Ok(p)
    }

    fn decide(&self, per_model: Vec<[f32; 3]>) -> LivenessScore {
        let prob = average(&per_model);
        LivenessScore {
            prob,
            live: prob[1] >= self.threshold,
            per_model,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_boxes_match_the_reference_fixture() {
        // expected_outputs.json: box (178,62,89,113) in 512x512 -> [102,0,342,305] and [44,0,400,452]
        let b = int_box(&[178.167, 62.908, 89.8995, 113.332]);
        assert_eq!(b, [178, 62, 89, 113]);
        let c = crop_box(512, 512, b, 2.7).unwrap();
        assert_eq!((c.left, c.top, c.right, c.bottom), (102, 0, 342, 305));
        let c = crop_box(512, 512, b, 4.0).unwrap();
        assert_eq!((c.left, c.top, c.right, c.bottom), (44, 0, 400, 452));
        assert_eq!(c.roi().w, 357);
    }

    #[test]
    fn crop_is_shifted_inside_and_shrunk_to_fit() {
        // box near the bottom-right corner of a 100x100 image
        let c = crop_box(100, 100, [80, 80, 10, 10], 4.0).unwrap();
        assert_eq!((c.right, c.bottom), (99, 99));
        assert_eq!((c.left, c.top), (59, 59));
        // a box too big for scale: k = min(99/60, 99/60, 4) = 1.65
        let c = crop_box(100, 100, [20, 20, 60, 60], 4.0).unwrap();
        assert_eq!((c.left, c.top, c.right, c.bottom), (0, 0, 99, 99));
        assert!(crop_box(100, 100, [0, 0, 0, 10], 2.7).is_none());
    }

    #[test]
    fn averaging() {
        let a = average(&[[0.0, 1.0, 0.0], [0.5, 0.25, 0.25]]);
        assert_eq!(a, [0.25, 0.625, 0.125]);
    }
}
