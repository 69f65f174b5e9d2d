//! Plain image operations shared by the stages: an OpenCV-compatible bilinear resize (used by the
//! detector letterbox and the liveness crops) and colour/normalisation into NCHW tensors.
//!
//! The resize reproduces OpenCV `cv::resize(..., INTER_LINEAR)` for 8-bit images: half-pixel
//! centres, edge clamping, no antialiasing, and its 11-bit fixed-point weights with rounding, so
//! patches match those the reference (Python/OpenCV) pipeline feeds the models.

use image::RgbImage;

use super::manifest::ColourOrder;

const COEF_BITS: i32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// A rectangle in pixel coordinates: left, top, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roi {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// For each destination index: the first source index and the two fixed-point weights,
/// following OpenCV's INTER_LINEAR coordinate rule `src = (dst + 0.5) * scale - 0.5`.
fn linear_taps(src_len: usize, dst_len: usize) -> Vec<(usize, i32, i32)> {
    let scale = src_len as f64 / dst_len as f64;
    (0..dst_len)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= src_len as i64 - 1 {
                s = src_len as i64 - 1;
                frac = 0.0;
            }
            let a1 = (frac * COEF_SCALE).round() as i32;
            let a0 = ((1.0 - frac) * COEF_SCALE).round() as i32;
            (s as usize, a0, a1)
        })
        .collect()
}

/// Resizes the `roi` of an RGB image to `dw` x `dh` with OpenCV INTER_LINEAR semantics, writing
/// interleaved RGB bytes into `dst` (`dw * dh * 3` long).
pub fn resize_bilinear(src: &RgbImage, roi: Roi, dw: usize, dh: usize, dst: &mut [u8]) {
    assert!(
        roi.w > 0 && roi.h > 0 && roi.x + roi.w <= src.width() && roi.y + roi.h <= src.height()
    );
    assert_eq!(dst.len(), dw * dh * 3);
    let (sw, sh) = (roi.w as usize, roi.h as usize);
    let stride = src.width() as usize * 3;
    let raw = src.as_raw();
    let xt = linear_taps(sw, dw);
    let yt = linear_taps(sh, dh);
    // Horizontal pass into two cached rows of i32 (value * 2048).
    let hrow = |sy: usize, out: &mut [i32]| {
        let row = &raw[(roi.y as usize + sy) * stride + roi.x as usize * 3..][..sw * 3];
        for (d, &(sx, a0, a1)) in xt.iter().enumerate() {
            let p0 = &row[sx * 3..sx * 3 + 3];
            let o = &mut out[d * 3..d * 3 + 3];
            if a1 == 0 {
                for c in 0..3 {
                    o[c] = p0[c] as i32 * a0;
                }
            } else {
                let p1 = &row[(sx + 1) * 3..(sx + 1) * 3 + 3];
                for c in 0..3 {
                    o[c] = p0[c] as i32 * a0 + p1[c] as i32 * a1;
                }
            }
        }
    };
    let mut r0 = vec![0i32; dw * 3];
    let mut r1 = vec![0i32; dw * 3];
    let (mut have0, mut have1) = (usize::MAX, usize::MAX);
    for (d, &(sy, b0, b1)) in yt.iter().enumerate() {
        let sy1 = (sy + 1).min(sh - 1);
        if have0 != sy {
            if have1 == sy {
                std::mem::swap(&mut r0, &mut r1);
                std::mem::swap(&mut have0, &mut have1);
            } else {
                hrow(sy, &mut r0);
                have0 = sy;
            }
        }
        if have1 != sy1 {
            hrow(sy1, &mut r1);
            have1 = sy1;
        }
        let out = &mut dst[d * dw * 3..(d + 1) * dw * 3];
        for i in 0..dw * 3 {
            let v = (r0[i] as i64 * b0 as i64 + r1[i] as i64 * b1 as i64 + (1 << 21)) >> 22;
            out[i] = v.clamp(0, 255) as u8;
        }
    }
}

/// Writes interleaved RGB bytes (`w` x `h`) into channel planes of an NCHW tensor whose planes are
/// `plane_w` wide (>= `w`), in the model's colour order, as `(x - mean) / std`.
#[allow(clippy::too_many_arguments)]
pub fn rgb_to_planes(
    rgb: &[u8],
    w: usize,
    h: usize,
    plane_w: usize,
    plane_h: usize,
    colour: ColourOrder,
    mean: [f32; 3],
    std: [f32; 3],
    out: &mut [f32],
) {
    let plane = plane_w * plane_h;
    assert!(out.len() >= 3 * plane && w <= plane_w && h <= plane_h);
    let order = match colour {
        ColourOrder::Rgb => [0, 1, 2],
        ColourOrder::Bgr => [2, 1, 0],
    };
    let inv = [1.0 / std[0], 1.0 / std[1], 1.0 / std[2]];
    let (p0, rest) = out.split_at_mut(plane);
    let (p1, rest) = rest.split_at_mut(plane);
    let p2 = &mut rest[..plane];
    // one pass over the interleaved pixels, writing the three planes
    for y in 0..h {
        let src = &rgb[y * w * 3..(y + 1) * w * 3];
        let row = y * plane_w..y * plane_w + w;
        let (d0, d1, d2) = (&mut p0[row.clone()], &mut p1[row.clone()], &mut p2[row]);
        for (x, px) in src.chunks_exact(3).enumerate() {
            d0[x] = (px[order[0]] as f32 - mean[0]) * inv[0];
            d1[x] = (px[order[1]] as f32 - mean[1]) * inv[1];
            d2[x] = (px[order[2]] as f32 - mean[2]) * inv[2];
        }
    }
}

/// Fills the part of each plane outside the `w` x `h` top-left image with the value a zero pixel
/// normalises to.
#[allow(clippy::too_many_arguments)]
pub fn pad_planes(
    w: usize,
    h: usize,
    plane_w: usize,
    plane_h: usize,
    mean: [f32; 3],
    std: [f32; 3],
    out: &mut [f32],
) {
    let plane = plane_w * plane_h;
    for c in 0..3 {
        let v = (0.0 - mean[c]) / std[c];
        let p = &mut out[c * plane..(c + 1) * plane];
        for y in 0..h {
            p[y * plane_w + w..(y + 1) * plane_w].fill(v);
        }
        p[h * plane_w..].fill(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)))
    }

    #[test]
    fn identity_resize_is_exact() {
        let src = img(7, 5, |x, y| [(x * 30) as u8, (y * 40) as u8, (x + y) as u8]);
        let mut dst = vec![0; 7 * 5 * 3];
        resize_bilinear(
            &src,
            Roi {
                x: 0,
                y: 0,
                w: 7,
                h: 5,
            },
            7,
            5,
            &mut dst,
        );
        assert_eq!(dst, src.as_raw().as_slice());
    }

    #[test]
    fn upscale_two_pixels_matches_opencv() {
        // cv2.resize(np.array([[0, 100]], np.uint8), (4, 1)) == [[0, 25, 75, 100]]
        let src = img(2, 1, |x, _| [(x * 100) as u8; 3]);
        let mut dst = vec![0; 4 * 3];
        resize_bilinear(
            &src,
            Roi {
                x: 0,
                y: 0,
                w: 2,
                h: 1,
            },
            4,
            1,
            &mut dst,
        );
        let got: Vec<u8> = dst.chunks(3).map(|p| p[0]).collect();
        assert_eq!(got, vec![0, 25, 75, 100]);
    }

    #[test]
    fn downscale_has_no_antialiasing() {
        // Half-pixel centres: 4 -> 2 samples at source 0.5 and 2.5, i.e. plain averages of pairs
        // (an antialiasing filter would blend in more neighbours).
        let src = img(4, 1, |x, _| [[0, 100, 200, 40][x as usize]; 3]);
        let mut dst = vec![0; 2 * 3];
        resize_bilinear(
            &src,
            Roi {
                x: 0,
                y: 0,
                w: 4,
                h: 1,
            },
            2,
            1,
            &mut dst,
        );
        assert_eq!((dst[0], dst[3]), (50, 120));
    }

    #[test]
    fn roi_is_respected() {
        let src = img(10, 10, |x, y| [(x * 10 + y) as u8; 3]);
        let mut dst = vec![0; 3 * 2 * 3];
        resize_bilinear(
            &src,
            Roi {
                x: 4,
                y: 6,
                w: 3,
                h: 2,
            },
            3,
            2,
            &mut dst,
        );
        assert_eq!(dst[0], 46);
        assert_eq!(dst[(2 + 3) * 3], 67);
    }

    #[test]
    fn planes_follow_colour_order_and_normalisation() {
        let rgb = [10u8, 20, 30, 40, 50, 60];
        let mut out = vec![9.0; 3 * 3];
        rgb_to_planes(
            &rgb,
            2,
            1,
            3,
            1,
            ColourOrder::Bgr,
            [0.0; 3],
            [1.0; 3],
            &mut out,
        );
        pad_planes(2, 1, 3, 1, [0.0; 3], [1.0; 3], &mut out);
        assert_eq!(out, vec![30.0, 60.0, 0.0, 20.0, 50.0, 0.0, 10.0, 40.0, 0.0]);
        let mut out = vec![0.0; 2 * 3];
        rgb_to_planes(
            &rgb,
            2,
            1,
            2,
            1,
            ColourOrder::Rgb,
            [127.5; 3],
            [128.0; 3],
            &mut out,
        );
        assert!((out[0] - (10.0 - 127.5) / 128.0).abs() < 1e-6);
    }
}
