//! `zhucan-kiosk bench`: per-stage latency of the face pipeline on a 640x480 frame (p50/p95 over
//! N runs, ONNX Runtime with 1 and 2 intra-op threads) and 1:N search time against random
//! galleries of 1k..1M unit templates.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::eval::Error;
use crate::image_io;
use crate::imgproc::{Roi, resize_bilinear};
use crate::matcher::Gallery;
use crate::runtime::SessionOptions;
use crate::visit::{LiveFrame, Observation, Visit, VisitRule, quality_weight};
use crate::{FacePipeline, Outcome, PipelineConfig};

/// Builds a 640x480 camera-like frame: the image scaled to 480 px high, centred on mid grey.
pub fn frame_640x480(src: &RgbImage) -> RgbImage {
    let h = 480u32;
    let w = ((src.width() as f32 * h as f32 / src.height() as f32).round() as u32).min(640);
    let mut scaled = vec![0u8; (w * h * 3) as usize];
    let roi = Roi {
        x: 0,
        y: 0,
        w: src.width(),
        h: src.height(),
    };
    resize_bilinear(src, roi, w as usize, h as usize, &mut scaled);
    let scaled = RgbImage::from_raw(w, h, scaled).expect("buffer size");
    let mut frame = RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut frame, &scaled, ((640 - w) / 2) as i64, 0);
    frame
}

/// p50 and p95 of durations, in milliseconds.
pub fn percentiles(d: &mut [Duration]) -> (f64, f64) {
    if d.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    d.sort();
    let at = |p: f64| {
        let i = ((p * (d.len() - 1) as f64).round() as usize).min(d.len() - 1);
        d[i].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.95))
}

/// Per-stage latencies for one session configuration.
pub struct StageBench {
    pub label: String,
    /// (stage, p50 ms, p95 ms)
    pub rows: Vec<(&'static str, f64, f64)>,
    pub outcome: String,
}

/// Runs every stage `runs` times on `frame`, then the whole `process` `runs` times.
pub fn bench_stages(
    base: &PipelineConfig,
    opts: SessionOptions,
    frame: &RgbImage,
    runs: usize,
) -> Result<StageBench, Error> {
    let mut cfg = base.clone();
    cfg.session = opts;
    let mut p = FacePipeline::load(cfg)?;
    let face = p
        .detect_one(frame, crate::detect::Select::Largest)?
        .ok_or_else(|| crate::Error::Invalid("no face in the bench frame".into()))?;
    // warm-up
    for _ in 0..5 {
        p.process(frame)?;
    }
    // what the kiosk decides with: a canteen-size gallery (1,000 random templates)
    let dim = p.embedding_dim();
    let mut gallery = Gallery::new(dim);
    for (i, t) in random_unit_templates(1000, dim, 7)
        .chunks_exact(dim)
        .enumerate()
    {
        gallery.add(&(i / 4).to_string(), t)?;
    }
    let matching = p.config().matching;
    let mut visit = Visit::new(VisitRule::default());
    // Stages and the whole pipeline alternate within each run, so both see the same machine load.
    let mut t: [Vec<Duration>; 10] = Default::default();
    let mut outcome = String::new();
    for _ in 0..runs {
        let s = Instant::now();
        let _ = p.detect(frame)?;
        t[0].push(s.elapsed());
        let s = Instant::now();
        let _ = p.quality(frame, &face);
        t[1].push(s.elapsed());
        let s = Instant::now();
        let _ = p.liveness(frame, &face)?;
        t[2].push(s.elapsed());
        let s = Instant::now();
        let aligned = p.align(frame, &face)?.0.clone();
        t[3].push(s.elapsed());
        let s = Instant::now();
        let _ = p.embed_aligned(&aligned)?;
        t[4].push(s.elapsed());
        p.set_parallel_stages(false);
        let s = Instant::now();
        p.process(frame)?;
        t[5].push(s.elapsed());
        p.set_parallel_stages(true);
        let s = Instant::now();
        let r = p.process(frame)?;
        t[6].push(s.elapsed());
        // the kiosk before: one frame matched alone
        let e = match &r.outcome {
            Outcome::Embedded(e) => e.clone(),
            _ => vec![0.0; dim],
        };
        let s = Instant::now();
        let _ = gallery.identify(&e, &matching);
        t[7].push(s.elapsed());
        // the kiosk now: the frame joins the visit, whose live frames are fused and matched
        let live = Observation::Live(LiveFrame {
            embedding: e,
            weight: r.quality.as_ref().map_or(1.0, quality_weight),
            liveness: r.liveness.as_ref().map_or(1.0, |l| l.prob[1]),
            yaw: r.quality.as_ref().map_or(0.0, |q| q.pose.yaw),
        });
        let s = Instant::now();
        let _ = visit.observe(live, &gallery, &matching);
        let decided = s.elapsed();
        t[8].push(decided);
        t[9].push(*t[6].last().expect("timed") + decided);
        outcome = match r.outcome {
            Outcome::Embedded(_) => "all stages ran (live face embedded)".to_string(),
            Outcome::Rejected(why) => format!("stopped at quality gate: {}", why.code()),
            Outcome::Spoof => "stopped at liveness (spoof)".to_string(),
            Outcome::NoFace => "no face".to_string(),
        };
    }
    let names = [
        "detect",
        "quality",
        "liveness (2 models)",
        "align",
        "embed",
        "whole, sequential",
        "whole, liveness || embed",
        "match one frame (1k templates)",
        "visit: fuse + match (1k)",
        "frame: whole || + visit",
    ];
    let rows = names
        .iter()
        .zip(t.iter_mut())
        .map(|(n, d)| {
            let (a, b) = percentiles(d);
            (*n, a, b)
        })
        .collect();
    Ok(StageBench {
        label: format!(
            "{} thread{}, spinning {}",
            opts.intra_threads,
            if opts.intra_threads == 1 { "" } else { "s" },
            if opts.spinning { "on" } else { "off" }
        ),
        rows,
        outcome,
    })
}

/// Deterministic random unit vectors (xorshift), `n x dim` row-major.
pub fn random_unit_templates(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut v = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let row: Vec<f32> = (0..dim).map(|_| next()).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.extend(row.iter().map(|x| x / norm));
    }
    v
}

/// 1:N search latency: (gallery size, p50 ms, p95 ms, exact f32 scan p50 ms).
pub fn bench_search(
    sizes: &[usize],
    dim: usize,
    queries: usize,
) -> Result<Vec<(usize, f64, f64, f64)>, Error> {
    let mut out = Vec::new();
    let probes = random_unit_templates(queries, dim, 7);
    for &n in sizes {
        let mut g = Gallery::new(dim);
        let rows = random_unit_templates(n, dim, 11 + n as u64);
        for (i, r) in rows.chunks_exact(dim).enumerate() {
            // 4 templates per resident
            g.add(&format!("r{}", i / 4), r)?;
        }
        drop(rows);
        let q = if n >= 1_000_000 {
            queries.min(50)
        } else {
            queries
        };
        let mut fast = Vec::with_capacity(q);
        let mut exact = Vec::with_capacity(q.min(20));
        for p in probes.chunks_exact(dim).take(q) {
            let s = Instant::now();
            std::hint::black_box(g.search(std::hint::black_box(p)));
            fast.push(s.elapsed());
        }
        for p in probes.chunks_exact(dim).take(q.min(20)) {
            let s = Instant::now();
            std::hint::black_box(g.search_exact(std::hint::black_box(p)));
            exact.push(s.elapsed());
        }
        let (a, b) = percentiles(&mut fast);
        let (e, _) = percentiles(&mut exact);
        out.push((n, a, b, e));
    }
    Ok(out)
}

/// Parses a session configuration: `1`, `2` (spinning off) or `2spin` (ONNX Runtime's default
/// spinning on).
pub fn parse_threads(s: &str) -> Option<SessionOptions> {
    let (n, spinning) = match s.strip_suffix("spin") {
        Some(n) => (n, true),
        None => (s, false),
    };
    Some(SessionOptions {
        intra_threads: n.parse().ok().filter(|n| *n > 0)?,
        spinning,
    })
}

/// Runs the whole benchmark and renders the table.
pub fn run(
    base: &PipelineConfig,
    image: &Path,
    runs: usize,
    search_sizes: &[usize],
    threads: &[SessionOptions],
) -> Result<String, Error> {
    let src = image_io::load_rgb(image)?;
    let frame = frame_640x480(&src);
    let mut out = String::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(
        out,
        "machine: {cpus} CPUs, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "frame: 640x480 built from {} ; {runs} runs per stage",
        image.display()
    );
    let configs: Vec<SessionOptions> = threads.to_vec();
    let mut benches = Vec::new();
    for o in configs {
        benches.push(bench_stages(base, o, &frame, runs)?);
    }
    let _ = write!(out, "\n{:<30}", "stage (ms)");
    for b in &benches {
        let _ = write!(out, " | {:^27}", b.label);
    }
    let _ = write!(out, "\n{:<30}", "");
    for _ in &benches {
        let _ = write!(out, " | {:>13} {:>13}", "p50", "p95");
    }
    out.push('\n');
    for i in 0..benches[0].rows.len() {
        let _ = write!(out, "{:<30}", benches[0].rows[i].0);
        for b in &benches {
            let _ = write!(out, " | {:>13.2} {:>13.2}", b.rows[i].1, b.rows[i].2);
        }
        out.push('\n');
    }
    for b in &benches {
        let _ = writeln!(out, "{}: {}", b.label, b.outcome);
    }
    let dim = FacePipeline::load(base.clone())?.embedding_dim();
    out.push('\n');
    out.push_str(&run_search(search_sizes, dim)?);
    Ok(out)
}

/// The 1:N search table alone.
pub fn run_search(search_sizes: &[usize], dim: usize) -> Result<String, Error> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "1:N search, {dim}-d unit templates (4 per resident), 12-bit (i16) scan + f32 re-score of top {}",
        crate::matcher::SHORTLIST
    );
    let _ = writeln!(
        out,
        "{:>10} | {:>9} {:>9} | {:>15}",
        "templates", "p50 ms", "p95 ms", "f32 full scan ms"
    );
    for (n, a, b, e) in bench_search(search_sizes, dim, 200)? {
        let _ = writeln!(out, "{n:>10} | {a:>9.3} {b:>9.3} | {e:>15.3}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_values() {
        let mut d: Vec<Duration> = (1..=101).map(Duration::from_millis).collect();
        let (p50, p95) = percentiles(&mut d);
        assert_eq!((p50, p95), (51.0, 96.0));
    }

    #[test]
    fn frame_is_640x480_and_templates_are_unit() {
        let f = frame_640x480(&RgbImage::new(512, 512));
        assert_eq!(f.dimensions(), (640, 480));
        let t = random_unit_templates(3, 16, 1);
        for r in t.chunks(16) {
            assert!((r.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}
