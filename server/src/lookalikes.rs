//! Duplicate enrolment (issue 12): one person enrolled as two residents (a double subsidy), or
//! someone's face enrolled on a relative's record. A template upload is searched against every
//! other resident's stored templates (opened with the template key, as the sync does) inside
//! the write transaction; a match at or above the duplicate threshold is refused unless staff
//! confirm it with a reason, and a confirmed pair is recorded (`db::lookalikes`). The
//! administrator's scan compares every resident's templates with every other's, over one
//! opened matrix per dimension, and records the pairs it finds. Embeddings are never logged.

use std::collections::HashMap;

use zhucan_domain::ResidentId;

use crate::db::lookalikes::SealedTemplate;
use crate::db::{self, Conn};
use crate::templates;

/// Another resident whose stored face matches: their best template's cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub resident: ResidentId,
    pub score: f32,
}

/// What an upload with these matches (best first) and this staff confirmation may do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// No other resident's face matches.
    Clear,
    /// Every match is the resident staff confirmed: enrol, and record the pair.
    Confirmed(Match),
    /// Refuse: this resident's face matches (the best one not confirmed).
    Duplicate(Match),
}

/// Judges an upload: `found` are the matches at or above the threshold, best first;
/// `confirmed` the other resident staff named, if any.
pub fn judge(found: &[Match], confirmed: Option<ResidentId>) -> Verdict {
    match (found.first(), confirmed) {
        (None, _) => Verdict::Clear,
        (Some(best), None) => Verdict::Duplicate(*best),
        (Some(best), Some(other)) => match found.iter().find(|m| m.resident != other) {
            Some(m) => Verdict::Duplicate(*m),
            None => Verdict::Confirmed(*best),
        },
    }
}

/// Dot product of two rows of equal length, eight lanes at a time (so it vectorises).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length (stored and uploaded embeddings are unit within 1e-3 already).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

fn open(key: &[u8; 32], t: &SealedTemplate) -> db::Result<Vec<f32>> {
    templates::open_embedding(key, t.resident_id, &t.sealed)
        .map(unit)
        .map_err(|e| db::Error::other(format!("template of resident {}: {e}", t.resident_id.0)))
}

/// Other residents whose stored templates (of the same dimension) match any of `embeddings`
/// with a cosine similarity of at least `threshold`, best first.
pub fn matches(
    conn: &Conn,
    key: &[u8; 32],
    resident: ResidentId,
    embeddings: &[Vec<f32>],
    threshold: f64,
) -> db::Result<Vec<Match>> {
    let Some(dim) = embeddings.first().map(Vec::len) else {
        return Ok(Vec::new());
    };
    let probes: Vec<Vec<f32>> = embeddings.iter().cloned().map(unit).collect();
    let mut best: HashMap<ResidentId, f32> = HashMap::new();
    for t in db::lookalikes::sealed_templates(conn, Some(dim), Some(resident))? {
        let row = open(key, &t)?;
        let score = probes
            .iter()
            .map(|p| dot(p, &row))
            .fold(f32::NEG_INFINITY, f32::max);
        if f64::from(score) >= threshold {
            let b = best.entry(t.resident_id).or_insert(score);
            *b = b.max(score);
        }
    }
    let mut out: Vec<Match> = best
        .into_iter()
        .map(|(resident, score)| Match { resident, score })
        .collect();
    out.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.resident.cmp(&y.resident))
    });
    Ok(out)
}

/// A pair of residents the scan found, the smaller id first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub a: ResidentId,
    pub b: ResidentId,
    pub score: f32,
}

/// Compares every stored template with every other resident's (one opened matrix per
/// dimension; O(N²) over templates) and returns each pair of residents whose best pair of
/// templates reaches `threshold`, best first.
pub fn scan(key: &[u8; 32], stored: &[SealedTemplate], threshold: f64) -> db::Result<Vec<Pair>> {
    let mut by_dim: HashMap<usize, (Vec<ResidentId>, Vec<f32>)> = HashMap::new();
    for t in stored {
        let row = open(key, t)?;
        if row.len() != t.dim {
            return Err(db::Error::other(format!(
                "template of resident {} has {} values, stored as dimension {}",
                t.resident_id.0,
                row.len(),
                t.dim
            )));
        }
        let (owners, rows) = by_dim.entry(t.dim).or_default();
        owners.push(t.resident_id);
        rows.extend_from_slice(&row);
    }
    let mut best: HashMap<(ResidentId, ResidentId), f32> = HashMap::new();
    for (dim, (owners, rows)) in &by_dim {
        for i in 0..owners.len() {
            let ri = &rows[i * dim..(i + 1) * dim];
            for j in i + 1..owners.len() {
                if owners[i] == owners[j] {
                    continue;
                }
                let score = dot(ri, &rows[j * dim..(j + 1) * dim]);
                if f64::from(score) >= threshold {
                    let key = (owners[i].min(owners[j]), owners[i].max(owners[j]));
                    let b = best.entry(key).or_insert(score);
                    *b = b.max(score);
                }
            }
        }
    }
    let mut out: Vec<Pair> = best
        .into_iter()
        .map(|((a, b), score)| Pair { a, b, score })
        .collect();
    out.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(r: i64, score: f32) -> Match {
        Match {
            resident: ResidentId(r),
            score,
        }
    }

    #[test]
    fn a_confirmation_covers_only_the_resident_it_names() {
        assert_eq!(judge(&[], None), Verdict::Clear);
        assert_eq!(judge(&[], Some(ResidentId(3))), Verdict::Clear);
        assert_eq!(judge(&[m(3, 0.9)], None), Verdict::Duplicate(m(3, 0.9)));
        assert_eq!(
            judge(&[m(3, 0.9)], Some(ResidentId(3))),
            Verdict::Confirmed(m(3, 0.9))
        );
        assert_eq!(
            judge(&[m(3, 0.9)], Some(ResidentId(4))),
            Verdict::Duplicate(m(3, 0.9))
        );
        // two look-alikes: confirming one leaves the other refused
        assert_eq!(
            judge(&[m(3, 0.9), m(5, 0.7)], Some(ResidentId(3))),
            Verdict::Duplicate(m(5, 0.7))
        );
    }

    #[test]
    fn the_duplicate_threshold_defaults_to_0_62_and_must_lie_in_0_to_1() {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            security: crate::config::SecurityArgs,
        }
        let d = Args::try_parse_from(["t"]).expect("defaults");
        assert_eq!(d.security.config().duplicate_face_threshold, 0.62);
        let set = Args::try_parse_from(["t", "--duplicate-face-threshold", "0.7"]).expect("0.7");
        assert_eq!(set.security.config().duplicate_face_threshold, 0.7);
        for bad in ["1.5", "-0.1", "x"] {
            let arg = format!("--duplicate-face-threshold={bad}");
            let e = Args::try_parse_from(["t", arg.as_str()])
                .err()
                .expect("refused");
            assert!(e.to_string().contains("--duplicate-face-threshold"), "{e}");
        }
    }

    #[test]
    fn dot_handles_a_length_that_is_not_a_multiple_of_eight() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let want: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), want);
    }
}
