//! Face alignment: the least-squares similarity transform (Umeyama, without reflection) from the
//! five YuNet landmarks to the ArcFace 112x112 template, and a bilinear affine warp with a black
//! border (the same as insightface `norm_crop` / OpenCV `warpAffine(..., INTER_LINEAR,
//! BORDER_CONSTANT 0)`), implemented by hand.

use image::RgbImage;

/// The ArcFace 5-point template for a 112x112 crop (same landmark order as YuNet).
pub const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 2x3 affine matrix mapping source (frame) points to destination (crop) points.
pub type Affine = [[f64; 3]; 2];

/// Least-squares similarity transform (rotation, uniform scale, translation) taking `src` to
/// `dst`. For a 2-D similarity this closed form is exactly the Umeyama estimate (the optimum over
/// `[[a, -b], [b, a]]`, which never reflects). Returns `None` for degenerate input.
pub fn umeyama(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Affine> {
    let n = src.len();
    if n < 2 || dst.len() != n {
        return None;
    }
    let mean = |p: &[[f32; 2]]| {
        let (mut x, mut y) = (0.0f64, 0.0f64);
        for q in p {
            x += q[0] as f64;
            y += q[1] as f64;
        }
        (x / n as f64, y / n as f64)
    };
    let (sx, sy) = mean(src);
    let (dx, dy) = mean(dst);
    let (mut dot, mut cross, mut var) = (0.0f64, 0.0f64, 0.0f64);
    for (p, q) in src.iter().zip(dst) {
        let (px, py) = (p[0] as f64 - sx, p[1] as f64 - sy);
        let (qx, qy) = (q[0] as f64 - dx, q[1] as f64 - dy);
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
        var += px * px + py * py;
    }
    if var <= f64::EPSILON {
        return None;
    }
    let a = dot / var;
    let b = cross / var;
    Some([
        [a, -b, dx - (a * sx - b * sy)],
        [b, a, dy - (b * sx + a * sy)],
    ])
}

/// Inverse of a non-singular 2x3 affine matrix.
pub fn invert(m: &Affine) -> Option<Affine> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    if det.abs() < 1e-12 {
        return None;
    }
    let (a, b) = (m[1][1] / det, -m[0][1] / det);
    let (d, e) = (-m[1][0] / det, m[0][0] / det);
    Some([
        [a, b, -(a * m[0][2] + b * m[1][2])],
        [d, e, -(d * m[0][2] + e * m[1][2])],
    ])
}

/// Warps `src` by `m` (source -> destination) into `dst` (`out_w` x `out_h`), bilinear, black
/// outside the source. Like OpenCV, sample positions are rounded to 1/32 pixel.
pub fn warp_affine(src: &RgbImage, m: &Affine, dst: &mut RgbImage) {
    let inv = invert(m).unwrap_or([[0.0; 3]; 2]);
    let (sw, sh) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let stride = sw as usize * 3;
    let (ow, oh) = (dst.width(), dst.height());
    let out = dst.as_mut();
    for y in 0..oh {
        for x in 0..ow {
            let fx = inv[0][0] * x as f64 + inv[0][1] * y as f64 + inv[0][2];
            let fy = inv[1][0] * x as f64 + inv[1][1] * y as f64 + inv[1][2];
            // Fixed point with 5 fractional bits, as OpenCV's INTER_TAB_SIZE = 32.
            let qx = (fx * 32.0).round() as i64;
            let qy = (fy * 32.0).round() as i64;
            let (x0, y0) = (qx >> 5, qy >> 5);
            let ax = (qx & 31) as f32 / 32.0;
            let ay = (qy & 31) as f32 / 32.0;
            let w = [
                (1.0 - ax) * (1.0 - ay),
                ax * (1.0 - ay),
                (1.0 - ax) * ay,
                ax * ay,
            ];
            let mut acc = [0.0f32; 3];
            for (k, (ox, oy)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
                let (px, py) = (x0 + ox, y0 + oy);
                if px < 0 || py < 0 || px >= sw || py >= sh || w[k] == 0.0 {
                    continue;
                }
                let i = py as usize * stride + px as usize * 3;
                for c in 0..3 {
                    acc[c] += w[k] * raw[i + c] as f32;
                }
            }
            let o = (y as usize * ow as usize + x as usize) * 3;
            for c in 0..3 {
                out[o + c] = acc[c].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Aligns a face to the ArcFace template at `size` x `size` (112 for the stock template; other
/// sizes scale it). Returns the matrix used.
pub fn align(src: &RgbImage, landmarks: &[[f32; 2]; 5], dst: &mut RgbImage) -> Option<Affine> {
    let s = dst.width() as f32 / 112.0;
    let template: Vec<[f32; 2]> = ARCFACE_112.iter().map(|p| [p[0] * s, p[1] * s]).collect();
    let m = umeyama(landmarks, &template)?;
    warp_affine(src, &m, dst);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &Affine, p: [f32; 2]) -> [f64; 2] {
        let (x, y) = (p[0] as f64, p[1] as f64);
        [
            m[0][0] * x + m[0][1] * y + m[0][2],
            m[1][0] * x + m[1][1] * y + m[1][2],
        ]
    }

    #[test]
    fn recovers_an_exact_similarity() {
        let (s, t) = (1.7f64, 0.3f64);
        let truth: Affine = [
            [s * t.cos(), -s * t.sin(), 12.0],
            [s * t.sin(), s * t.cos(), -4.0],
        ];
        let src = ARCFACE_112;
        let dst: Vec<[f32; 2]> = src
            .iter()
            .map(|&p| {
                let q = apply(&truth, p);
                [q[0] as f32, q[1] as f32]
            })
            .collect();
        let m = umeyama(&src, &dst).unwrap();
        for r in 0..2 {
            for c in 0..3 {
                assert!((m[r][c] - truth[r][c]).abs() < 1e-3, "{m:?}");
            }
        }
    }

    #[test]
    fn never_reflects_and_rejects_degenerate_input() {
        let src = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
        let mirrored = [[0.0, 0.0], [-1.0, 0.0], [0.0, 1.0]];
        let m = umeyama(&src, &mirrored).unwrap();
        assert!(m[0][0] * m[1][1] - m[0][1] * m[1][0] >= 0.0);
        assert!(umeyama(&[[1.0, 1.0]; 3], &src).is_none());
    }

    #[test]
    fn inverse_round_trips() {
        let m: Affine = [[0.8, 0.1, -30.0], [-0.1, 0.8, 5.0]];
        let i = invert(&m).unwrap();
        let p = apply(&m, [10.0, 20.0]);
        let q = apply(&i, [p[0] as f32, p[1] as f32]);
        assert!((q[0] - 10.0).abs() < 1e-4 && (q[1] - 20.0).abs() < 1e-4);
    }

    #[test]
    fn warp_translates_and_fills_black() {
        let src = RgbImage::from_fn(4, 4, |x, y| image::Rgb([(10 * x + y) as u8, 0, 200]));
        let mut dst = RgbImage::new(4, 4);
        // destination = source shifted right by 1: dst(x) = src(x - 1)
        warp_affine(&src, &[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], &mut dst);
        assert_eq!(dst.get_pixel(0, 2).0, [0, 0, 0]);
        assert_eq!(dst.get_pixel(1, 2).0, src.get_pixel(0, 2).0);
        assert_eq!(dst.get_pixel(3, 3).0, src.get_pixel(2, 3).0);
        // half-pixel shift averages neighbours
        warp_affine(&src, &[[1.0, 0.0, -0.5], [0.0, 1.0, 0.0]], &mut dst);
        assert_eq!(dst.get_pixel(1, 0).0[0], 15);
    }
}
