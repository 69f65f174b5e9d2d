//! Face detection with YuNet: letterbox the frame into the model input, run it, decode all three
//! strides, threshold, NMS, and pick the face the caller wants.
//!
//! Decoding follows OpenCV `FaceDetectorYN` and the models README exactly: for stride `s`, grid
//! `cols = W / s`, anchor `i`: `score = sqrt(clamp(cls) * clamp(obj))`, centre
//! `((c + dx) s, (r + dy) s)`, size `(exp(dw) s, exp(dh) s)`, landmarks `((kx + c) s, (ky + r) s)`.
//! The fixed-size model gets a top-left letterbox (`scale = min(W/w, H/h)`, zero padding); a
//! dynamic-size model gets the frame as it is, zero-padded right and bottom to a multiple of 32.

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use super::imgproc::{Roi, pad_planes, resize_bilinear, rgb_to_planes};
use super::manifest::{Manifest, ModelSpec};
use super::runtime::{self, SessionOptions};
use super::{Error, model_error};

/// One detected face in frame coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Left, top, width, height.
    pub bbox: [f32; 4],
    /// Right eye (image left), left eye, nose tip, right and left mouth corners.
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
    /// Stride and anchor index the detection was decoded from (diagnostics).
    pub stride: u32,
    pub anchor: u32,
}

impl Detection {
    pub fn area(&self) -> f32 {
        self.bbox[2].max(0.0) * self.bbox[3].max(0.0)
    }

    pub fn centre(&self) -> [f32; 2] {
        [
            self.bbox[0] + self.bbox[2] / 2.0,
            self.bbox[1] + self.bbox[3] / 2.0,
        ]
    }

    /// Scales coordinates by `1 / s` (undoing a letterbox resize).
    pub fn unscale(mut self, s: f32) -> Self {
        for v in &mut self.bbox {
            *v /= s;
        }
        for p in &mut self.landmarks {
            p[0] /= s;
            p[1] /= s;
        }
        self
    }
}

/// Detections after NMS, the number of candidates before NMS, and each raw output's sum.
pub type RawDetection = (Vec<Detection>, usize, Vec<(String, f64)>);

/// Which face to keep when there are several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// The largest box (the kiosk: the resident stands closest).
    Largest,
    /// The box whose centre is nearest the image centre (LFW convention, evaluation).
    NearestCentre,
}

/// Raw outputs of one stride.
pub struct StrideOutputs<'a> {
    pub stride: usize,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    pub kps: &'a [f32],
}

/// Decodes every anchor of every stride whose score exceeds `threshold` (input coordinates).
pub fn decode(
    strides: &[StrideOutputs<'_>],
    input_w: usize,
    threshold: f32,
    out: &mut Vec<Detection>,
) {
    for so in strides {
        let s = so.stride as f32;
        let cols = input_w / so.stride;
        let n = so.cls.len().min(so.obj.len());
        for i in 0..n {
            let score = (so.cls[i].clamp(0.0, 1.0) * so.obj[i].clamp(0.0, 1.0)).sqrt();
            if score <= threshold {
                continue;
            }
            let c = (i % cols) as f32;
            let r = (i / cols) as f32;
            let b = &so.bbox[i * 4..i * 4 + 4];
            let cx = (c + b[0]) * s;
            let cy = (r + b[1]) * s;
            let w = b[2].exp() * s;
            let h = b[3].exp() * s;
            let k = &so.kps[i * 10..i * 10 + 10];
            let mut landmarks = [[0.0; 2]; 5];
            for (j, l) in landmarks.iter_mut().enumerate() {
                *l = [(k[2 * j] + c) * s, (k[2 * j + 1] + r) * s];
            }
            out.push(Detection {
                bbox: [cx - w / 2.0, cy - h / 2.0, w, h],
                landmarks,
                score,
                stride: so.stride as u32,
                anchor: i as u32,
            });
        }
    }
}

/// Intersection over union of two `[x, y, w, h]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let x1 = a[0].max(b[0]);
    let y1 = a[1].max(b[1]);
    let x2 = (a[0] + a[2]).min(b[0] + b[2]);
    let y2 = (a[1] + a[3]).min(b[1] + b[3]);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy non-maximum suppression: sorts by score (descending, stable) and drops every box whose
/// IoU with a kept box exceeds `iou_threshold`.
pub fn nms(dets: &mut Vec<Detection>, iou_threshold: f32) {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets.drain(..) {
        if kept.iter().all(|k| iou(&k.bbox, &d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    *dets = kept;
}

/// Index of the face to keep, or `None` when there is none.
pub fn select(dets: &[Detection], image_w: u32, image_h: u32, how: Select) -> Option<usize> {
    let centre = [image_w as f32 / 2.0, image_h as f32 / 2.0];
    let key = |d: &Detection| match how {
        Select::Largest => -d.area(),
        Select::NearestCentre => {
            let c = d.centre();
            (c[0] - centre[0]).powi(2) + (c[1] - centre[1]).powi(2)
        }
    };
    (0..dets.len()).min_by(|&a, &b| key(&dets[a]).total_cmp(&key(&dets[b])))
}

/// Letterbox geometry: the model input size and the scale applied to the frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub input_w: usize,
    pub input_h: usize,
    /// Resized frame size pasted at the top-left.
    pub resized_w: usize,
    pub resized_h: usize,
    pub scale: f32,
}

/// Plans the letterbox for a `w` x `h` frame. `fixed` is the model's input (height, width) or
/// `None` for a dynamic model, which is padded to a multiple of `align` without resizing.
pub fn letterbox(w: usize, h: usize, fixed: Option<(usize, usize)>, align: usize) -> Letterbox {
    match fixed {
        Some((ih, iw)) => {
            let scale = (iw as f32 / w as f32).min(ih as f32 / h as f32);
            let rw = ((w as f32 * scale).round() as usize).clamp(1, iw);
            let rh = ((h as f32 * scale).round() as usize).clamp(1, ih);
            Letterbox {
                input_w: iw,
                input_h: ih,
                resized_w: rw,
                resized_h: rh,
                scale,
            }
        }
        None => {
            let a = align.max(1);
            Letterbox {
                input_w: w.div_ceil(a) * a,
                input_h: h.div_ceil(a) * a,
                resized_w: w,
                resized_h: h,
                scale: 1.0,
            }
        }
    }
}

/// Detector settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Minimum score (0.6 per the models README).
    pub score_threshold: f32,
    /// NMS IoU threshold (0.3).
    pub nms_iou: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            score_threshold: 0.6,
            nms_iou: 0.3,
        }
    }
}

/// The YuNet session plus preallocated buffers.
pub struct Detector {
    session: Session,
    spec: ModelSpec,
    strides: Vec<usize>,
    align: usize,
    config: DetectorConfig,
    tensor: Vec<f32>,
    resized: Vec<u8>,
    candidates: Vec<Detection>,
}

impl Detector {
    /// Loads the manifest's detector.
    pub fn load(m: &Manifest, spec: &ModelSpec, opts: SessionOptions) -> Result<Self, Error> {
        let bytes = m.read_verified(spec)?;
        let strides: Vec<usize> = spec
            .params
            .get("strides")
            .map(String::as_str)
            .unwrap_or("8,16,32")
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|e| model_error(spec, format!("bad strides: {e}")))?;
        for s in &strides {
            for head in ["cls", "obj", "bbox", "kps"] {
                let name = format!("{head}_{s}");
                if !spec.outputs.contains(&name) {
                    return Err(model_error(spec, format!("manifest lacks output `{name}`")));
                }
            }
        }
        let align = spec.param_f64("align").unwrap_or(32.0) as usize;
        let session = runtime::session(&bytes, opts)?;
        Ok(Self {
            session,
            spec: spec.clone(),
            strides,
            align,
            config: DetectorConfig::default(),
            tensor: Vec::new(),
            resized: Vec::new(),
            candidates: Vec::new(),
        })
    }

    pub fn set_config(&mut self, config: DetectorConfig) {
        self.config = config;
    }

    pub fn config(&self) -> DetectorConfig {
        self.config
    }

    /// Detects faces, best score first, in frame coordinates.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>, Error> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let lb = letterbox(w, h, self.spec.fixed_hw(), self.align);
        let plane = lb.input_w * lb.input_h;
        self.tensor.resize(3 * plane, 0.0);
        let (mean, std) = (self.spec.mean, self.spec.std);
        if lb.resized_w == w && lb.resized_h == h {
            rgb_to_planes(
                img.as_raw(),
                w,
                h,
                lb.input_w,
                lb.input_h,
                self.spec.colour,
                mean,
                std,
                &mut self.tensor,
            );
        } else {
            self.resized.resize(lb.resized_w * lb.resized_h * 3, 0);
            let roi = Roi {
                x: 0,
                y: 0,
                w: w as u32,
                h: h as u32,
            };
            resize_bilinear(img, roi, lb.resized_w, lb.resized_h, &mut self.resized);
            rgb_to_planes(
                &self.resized,
                lb.resized_w,
                lb.resized_h,
                lb.input_w,
                lb.input_h,
                self.spec.colour,
                mean,
                std,
                &mut self.tensor,
            );
        }
        pad_planes(
            lb.resized_w,
            lb.resized_h,
            lb.input_w,
            lb.input_h,
            mean,
            std,
            &mut self.tensor,
        );
        let mut dets = self.run_and_decode(lb.input_w, lb.input_h)?;
        if lb.scale != 1.0 {
            for d in &mut dets {
                *d = d.unscale(lb.scale);
            }
        }
        Ok(dets)
    }

    /// Runs the model on `self.tensor` (an `input_w` x `input_h` NCHW input) and decodes + NMS.
    fn run_and_decode(&mut self, input_w: usize, input_h: usize) -> Result<Vec<Detection>, Error> {
        let input = TensorRef::from_array_view(([1usize, 3, input_h, input_w], &self.tensor[..]))?;
        let outputs = self
            .session
            .run(ort::inputs![self.spec.input.as_str() => input])?;
        let mut per_stride = Vec::with_capacity(self.strides.len());
        for &s in &self.strides {
            let get = |head: &str| -> Result<&[f32], Error> {
                let name = format!("{head}_{s}");
                let v = outputs
                    .get(&name)
                    .ok_or_else(|| model_error(&self.spec, format!("no output `{name}`")))?;
                Ok(v.try_extract_tensor::<f32>()?.1)
            };
            let so = StrideOutputs {
                stride: s,
                cls: get("cls")?,
                obj: get("obj")?,
                bbox: get("bbox")?,
                kps: get("kps")?,
            };
            let cells = (input_w / s) * (input_h / s);
            if so.cls.len() != cells || so.bbox.len() != 4 * cells || so.kps.len() != 10 * cells {
                return Err(model_error(
                    &self.spec,
                    format!("stride {s}: output sizes do not match a {input_w}x{input_h} grid"),
                ));
            }
            per_stride.push(so);
        }
        self.candidates.clear();
        decode(
            &per_stride,
            input_w,
            self.config.score_threshold,
            &mut self.candidates,
        );
        let mut dets = self.candidates.clone();
        nms(&mut dets, self.config.nms_iou);
        Ok(dets)
    }

    /// Runs the model on an image pasted at the top-left of the input without any resize (the
    /// reference fixture's convention), returning detections and the raw output sums by name.
    pub fn detect_unresized(&mut self, img: &RgbImage) -> Result<RawDetection, Error> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (ih, iw) = self.spec.fixed_hw().unwrap_or((
            h.div_ceil(self.align) * self.align,
            w.div_ceil(self.align) * self.align,
        ));
        if w > iw || h > ih {
            return Err(model_error(
                &self.spec,
                format!("{w}x{h} does not fit {iw}x{ih}"),
            ));
        }
        self.tensor.resize(3 * iw * ih, 0.0);
        let (mean, std) = (self.spec.mean, self.spec.std);
        rgb_to_planes(
            img.as_raw(),
            w,
            h,
            iw,
            ih,
            self.spec.colour,
            mean,
            std,
            &mut self.tensor,
        );
        pad_planes(w, h, iw, ih, mean, std, &mut self.tensor);
        let input = TensorRef::from_array_view(([1usize, 3, ih, iw], &self.tensor[..]))?;
        let outputs = self
            .session
            .run(ort::inputs![self.spec.input.as_str() => input])?;
        let mut sums = Vec::new();
        for name in &self.spec.outputs {
            if let Some(v) = outputs.get(name) {
                let data = v.try_extract_tensor::<f32>()?.1;
                sums.push((name.clone(), data.iter().map(|&x| x as f64).sum()));
            }
        }
        drop(outputs);
        self.run_and_decode(iw, ih)
            .map(|d| (d, self.candidates.len(), sums))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, w: f32, h: f32, score: f32) -> Detection {
        Detection {
            bbox: [x, y, w, h],
            landmarks: [[0.0; 2]; 5],
            score,
            stride: 8,
            anchor: 0,
        }
    }

    #[test]
    fn letterbox_fixed_and_dynamic() {
        let lb = letterbox(640, 480, Some((640, 640)), 32);
        assert_eq!((lb.resized_w, lb.resized_h, lb.scale), (640, 480, 1.0));
        let lb = letterbox(250, 250, Some((640, 640)), 32);
        assert_eq!((lb.resized_w, lb.resized_h), (640, 640));
        assert!((lb.scale - 2.56).abs() < 1e-6);
        let lb = letterbox(1280, 720, Some((640, 640)), 32);
        assert_eq!((lb.resized_w, lb.resized_h, lb.scale), (640, 360, 0.5));
        let lb = letterbox(500, 470, None, 32);
        assert_eq!((lb.input_w, lb.input_h, lb.scale), (512, 480, 1.0));
    }

    #[test]
    fn decode_follows_the_yunet_formulas() {
        // 2x2 grid at stride 8 (input 16 wide): anchor 3 is row 1, col 1.
        let cls = [0.0, 0.0, 0.0, 0.81];
        let obj = [1.0, 1.0, 1.0, 1.5]; // clamped to 1
        let mut bbox = [0.0f32; 16];
        bbox[12..16].copy_from_slice(&[0.5, 0.25, 0.0, (2.0f32).ln()]);
        let mut kps = [0.0f32; 40];
        kps[30] = 0.5;
        kps[31] = -0.5;
        let so = StrideOutputs {
            stride: 8,
            cls: &cls,
            obj: &obj,
            bbox: &bbox,
            kps: &kps,
        };
        let mut out = Vec::new();
        decode(&[so], 16, 0.6, &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        assert!((d.score - 0.9).abs() < 1e-6);
        // cx = (1 + 0.5) * 8 = 12, cy = (1 + 0.25) * 8 = 10, w = 8, h = 16
        let want = [8.0, 2.0, 8.0, 16.0];
        for (a, b) in d.bbox.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{:?}", d.bbox);
        }
        assert_eq!(d.landmarks[0], [12.0, 4.0]);
        assert_eq!(d.landmarks[1], [8.0, 8.0]);
        assert_eq!(d.anchor, 3);
    }

    #[test]
    fn iou_and_nms() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        assert!((iou(&a, &[5.0, 0.0, 10.0, 10.0]) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[20.0, 20.0, 5.0, 5.0]), 0.0);
        let mut d = vec![
            det(1.0, 0.0, 10.0, 10.0, 0.7),
            det(0.0, 0.0, 10.0, 10.0, 0.9),
            det(50.0, 50.0, 10.0, 10.0, 0.8),
            det(6.0, 0.0, 10.0, 10.0, 0.65), // IoU with the best = 4/16 = 0.25 -> kept
        ];
        nms(&mut d, 0.3);
        let scores: Vec<f32> = d.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.8, 0.65]);
    }

    #[test]
    fn select_largest_or_centred() {
        let d = vec![
            det(0.0, 0.0, 50.0, 50.0, 0.9),
            det(90.0, 90.0, 20.0, 20.0, 0.95),
        ];
        assert_eq!(select(&d, 200, 200, Select::Largest), Some(0));
        assert_eq!(select(&d, 200, 200, Select::NearestCentre), Some(1));
        assert_eq!(select(&[], 200, 200, Select::Largest), None);
    }
}
