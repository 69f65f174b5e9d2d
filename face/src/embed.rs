//! Face embedding with MobileFaceNet (or any embedder the manifest names): the aligned crop in the
//! manifest's colour order, normalised `(x - mean) / std` (RGB, `(x - 127.5) / 128` for the stock
//! model), NCHW; the output is L2-normalised so cosine similarity is a dot product. Optional
//! test-time augmentation averages the embedding with that of the horizontally flipped crop
//! (off by default: scores must agree pair by pair with the reference implementation).

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use super::imgproc::rgb_to_planes;
use super::manifest::{Manifest, ModelSpec};
use super::runtime::{self, SessionOptions};
use super::{Error, model_error};

/// Scales `v` to unit L2 norm in place; returns the original norm (0 leaves `v` unchanged).
pub fn l2_normalize(v: &mut [f32]) -> f32 {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in v.iter_mut() {
            *x /= n;
        }
    }
    n
}

/// Cosine similarity of two vectors (need not be normalised).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut d, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        d / (na.sqrt() * nb.sqrt())
    }
}

/// The embedder session plus preallocated buffers.
pub struct Embedder {
    session: Session,
    spec: ModelSpec,
    dim: usize,
    hw: (usize, usize),
    tensor: Vec<f32>,
    flipped: Vec<u8>,
}

impl Embedder {
    pub fn load(m: &Manifest, spec: &ModelSpec, opts: SessionOptions) -> Result<Self, Error> {
        let dim = spec
            .embedding_dim
            .ok_or_else(|| model_error(spec, "manifest lacks embedding_dim".into()))?;
        let hw = spec
            .fixed_hw()
            .ok_or_else(|| model_error(spec, "embedder input must have a fixed size".into()))?;
        let bytes = m.read_verified(spec)?;
        Ok(Self {
            session: runtime::session(&bytes, opts)?,
            spec: spec.clone(),
            dim,
            hw,
            tensor: Vec::new(),
            flipped: Vec::new(),
        })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Input (height, width) the aligned crop must have.
    pub fn input_hw(&self) -> (usize, usize) {
        self.hw
    }

    /// L2-normalised embedding of an aligned crop; with `flip`, the normalised mean of the crop's
    /// and its mirror image's embeddings (one batch of two).
    pub fn embed(&mut self, aligned: &RgbImage, flip: bool) -> Result<Vec<f32>, Error> {
        let (h, w) = self.hw;
        if (aligned.height() as usize, aligned.width() as usize) != (h, w) {
            return Err(model_error(
                &self.spec,
                format!(
                    "aligned crop is {}x{}, model wants {w}x{h}",
                    aligned.width(),
                    aligned.height()
                ),
            ));
        }
        let batch = if flip { 2 } else { 1 };
        let plane3 = 3 * w * h;
        self.tensor.resize(batch * plane3, 0.0);
        let (c, mean, std) = (self.spec.colour, self.spec.mean, self.spec.std);
        rgb_to_planes(
            aligned.as_raw(),
            w,
            h,
            w,
            h,
            c,
            mean,
            std,
            &mut self.tensor[..plane3],
        );
        if flip {
            self.flipped.resize(w * h * 3, 0);
            for y in 0..h {
                let row = &aligned.as_raw()[y * w * 3..(y + 1) * w * 3];
                let out = &mut self.flipped[y * w * 3..(y + 1) * w * 3];
                for x in 0..w {
                    out[x * 3..x * 3 + 3].copy_from_slice(&row[(w - 1 - x) * 3..(w - x) * 3]);
                }
            }
            rgb_to_planes(
                &self.flipped,
                w,
                h,
                w,
                h,
                c,
                mean,
                std,
                &mut self.tensor[plane3..],
            );
        }
        let input = TensorRef::from_array_view(([batch, 3, h, w], &self.tensor[..]))?;
        let outputs = self
            .session
            .run(ort::inputs![self.spec.input.as_str() => input])?;
        let raw = outputs[0].try_extract_tensor::<f32>()?.1;
        if raw.len() != batch * self.dim {
            return Err(model_error(
                &self.spec,
                format!("expected {} values, got {}", batch * self.dim, raw.len()),
            ));
        }
        let mut v = raw[..self.dim].to_vec();
        l2_normalize(&mut v);
        if flip {
            let mut f = raw[self.dim..].to_vec();
            l2_normalize(&mut f);
            for (a, b) in v.iter_mut().zip(&f) {
                *a += b;
            }
            l2_normalize(&mut v);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_and_cosine() {
        let mut v = vec![3.0, 4.0];
        assert_eq!(l2_normalize(&mut v), 5.0);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0, 0.0];
        assert_eq!(l2_normalize(&mut z), 0.0);
        assert!((cosine(&[1.0, 0.0], &[2.0, 2.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 0.0]), 0.0);
        assert!((cosine(&[1.0, 2.0], &[-1.0, -2.0]) + 1.0).abs() < 1e-6);
    }
}
