//! Templates that age with the elder (issue 16): a face changes over months and years, and a
//! resident's match scores drift down with it until the kiosk stops recognising them. This finds
//! the residents of a canteen whose accepted face scores have fallen since their current
//! templates were enrolled, or have come close to the kiosk's match threshold, so the canteen's
//! operator can invite them to enrol again at the counter.
//!
//! It only prompts. Templates are never replaced automatically: a gallery that updates itself
//! from accepted matches is the known way a gallery gets contaminated (one impostor accepted
//! once becomes the template). A re-enrolment stores new templates, which starts a new baseline,
//! so the prompt goes away by itself.
//!
//! Not a red flag (`crate::flags`, `borderline_scores`): a flag is evidence for finance that
//! somebody else may be eating on a resident's face; this is a service prompt for the operator.
//!
//! The rule, per resident, over their accepted face meals at the canteen:
//! - baseline: the median match score of the meals in the first [`BASELINE_DAYS`] days after
//!   their current templates were stored, or of the first [`MIN_MEALS`] meals after it when
//!   those days hold fewer; no baseline with fewer than [`MIN_MEALS`] meals;
//! - recent: the median of the meals of the last [`RECENT_DAYS`] local days (the configured
//!   zone, today included) that are not baseline meals; none with fewer than [`MIN_MEALS`];
//! - re-enrolment is suggested when recent <= baseline - [`DROP`], or recent <= the match
//!   threshold last reported by the kiosks that recorded the recent meals (the highest, when
//!   several) + [`NEAR_THRESHOLD`].

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use zhucan_domain::{CanteenId, ResidentId};

use crate::db::{self, Conn};

/// The baseline is read from the first four weeks after an enrolment: every weekday and a
/// regular diner's 15–20 lunches, and too soon after the photo for the face to have changed.
pub const BASELINE_DAYS: i64 = 28;

/// The recent scores are the last four weeks': long enough that one bad week (a cold, new
/// glasses, a kiosk moved into the sun) does not decide, short enough that a real change shows
/// within a month.
pub const RECENT_DAYS: i64 = 28;

/// Fewest meals a median is taken over, for the baseline and the recent scores: with fewer, one
/// badly lit frame moves it. The same count the `borderline_scores` flag asks for.
pub const MIN_MEALS: usize = 8;

/// A drop of the median this large suggests re-enrolment. It is the threshold's rise for a
/// tenfold larger gallery (`T(N)`, face/README.md: +0.06 per decade of templates), so a resident
/// who lost it has lost the headroom the canteen's growth would take; and it is more than the
/// 0.05 lead the matcher asks of the best resident over the runner-up, so it can turn a clear
/// match into a refused near-tie.
pub const DROP: f64 = 0.06;

/// Recent scores within this much above the kiosk's reported match threshold suggest
/// re-enrolment whatever the baseline: a gallery about three times larger raises `T(N)` by
/// 0.03 (0.06 × log10 3), and such a resident would then be refused. Not the
/// `borderline_scores` flag's 0.04: that flag asks finance whether somebody else eats on the
/// resident's face; this tells the operator the resident's own face is about to be refused.
pub const NEAR_THRESHOLD: f64 = 0.03;

/// Scores are reported with a few decimals; a difference this small is equality (0.80 - 0.06 is
/// not exactly 0.74 in binary).
const EPSILON: f64 = 1e-9;

/// Why re-enrolment is suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// recent <= baseline - [`DROP`].
    ScoreDrop,
    /// recent <= the kiosk's threshold + [`NEAR_THRESHOLD`].
    NearThreshold,
}

impl Reason {
    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::ScoreDrop => "score_drop",
            Reason::NearThreshold => "near_threshold",
        }
    }

    /// What the operator reads.
    pub fn label_zh(self) -> &'static str {
        match self {
            Reason::ScoreDrop => "近四周识别分数下降",
            Reason::NearThreshold => "接近识别阈值",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Reason::ScoreDrop => "match scores fell over the last four weeks",
            Reason::NearThreshold => "close to the kiosk's match threshold",
        }
    }
}

/// The verdict on one resident's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub baseline: f64,
    pub recent: f64,
    /// baseline - recent (negative when the scores rose).
    pub drop: f64,
    pub baseline_meals: usize,
    pub recent_meals: usize,
    /// The match threshold compared with, when a kiosk reported one.
    pub threshold: Option<f64>,
    /// Empty: nothing to suggest.
    pub reasons: Vec<Reason>,
}

/// The median (the mean of the two middle values of an even count); `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The rule on a resident's baseline and recent scores (each needs [`MIN_MEALS`]; `None` when
/// either has fewer) and the kiosk's threshold, if known.
pub fn verdict(baseline: &[f64], recent: &[f64], threshold: Option<f64>) -> Option<Verdict> {
    if baseline.len() < MIN_MEALS || recent.len() < MIN_MEALS {
        return None;
    }
    let (b, r) = (median(baseline)?, median(recent)?);
    let mut reasons = Vec::new();
    if b - r + EPSILON >= DROP {
        reasons.push(Reason::ScoreDrop);
    }
    if threshold.is_some_and(|t| r - t <= NEAR_THRESHOLD + EPSILON) {
        reasons.push(Reason::NearThreshold);
    }
    Some(Verdict {
        baseline: b,
        recent: r,
        drop: b - r,
        baseline_meals: baseline.len(),
        recent_meals: recent.len(),
        threshold,
        reasons,
    })
}

/// A resident the canteen's operator should invite to enrol again.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub resident_id: ResidentId,
    /// Masked as on the operator's meal list (`reports::mask_name`).
    pub name: String,
    /// When their current templates were stored (a stamp).
    pub enrolled_at: String,
    pub verdict: Verdict,
}

/// The first local day of the recent window that ends today (in `tz`).
pub fn recent_from(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive() - Duration::days(RECENT_DAYS - 1)
}

/// The residents with face meals at `canteen` in the recent window whose scores call for
/// re-enrolment, by resident id. Reads only.
pub fn suggestions(
    conn: &Conn<'_>,
    canteen: CanteenId,
    now: DateTime<Utc>,
    tz: Tz,
) -> db::Result<Vec<Suggestion>> {
    let from = recent_from(now, tz);
    let meals = db::ageing::face_meals_since_enrolment(
        conn,
        canteen,
        from,
        BASELINE_DAYS as f64,
        MIN_MEALS as i64,
    )?;
    let mut out = Vec::new();
    for one in meals.chunk_by(|a, b| a.resident_id == b.resident_id) {
        if let Some(s) = judge(one, from) {
            out.push(s);
        }
    }
    Ok(out)
}

/// One resident's meals (in order) to a suggestion, if their scores call for one.
fn judge(meals: &[db::ageing::FaceMeal], from: NaiveDate) -> Option<Suggestion> {
    let first = meals.first()?;
    let early = meals.iter().filter(|m| m.early).count();
    let in_baseline = |m: &db::ageing::FaceMeal| {
        if early >= MIN_MEALS {
            m.early
        } else {
            m.n <= MIN_MEALS as i64
        }
    };
    let baseline: Vec<f64> = meals
        .iter()
        .filter(|m| in_baseline(m))
        .map(|m| m.match_score)
        .collect();
    let recent: Vec<&db::ageing::FaceMeal> = meals
        .iter()
        .filter(|m| m.local_date >= from && !in_baseline(m))
        .collect();
    let threshold = recent
        .iter()
        .filter_map(|m| m.kiosk_threshold)
        .max_by(f64::total_cmp);
    let scores: Vec<f64> = recent.iter().map(|m| m.match_score).collect();
    let verdict = verdict(&baseline, &scores, threshold)?;
    if verdict.reasons.is_empty() {
        return None;
    }
    Some(Suggestion {
        resident_id: first.resident_id,
        name: crate::reports::mask_name(&first.name),
        enrolled_at: first.enrolled_at.clone(),
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[0.7]), Some(0.7));
        assert_eq!(median(&[0.9, 0.5, 0.7]), Some(0.7));
        assert_eq!(median(&[0.8, 0.6, 0.9, 0.7]), Some(0.75));
        // one outlier does not move it
        assert_eq!(median(&[0.8, 0.8, 0.8, 0.1, 0.8]), Some(0.8));
    }

    fn scores(v: f64, n: usize) -> Vec<f64> {
        vec![v; n]
    }

    #[test]
    fn a_drop_of_six_hundredths_or_more_is_prompted() {
        let v = verdict(&scores(0.80, 8), &scores(0.74, 8), None).expect("enough meals");
        assert_eq!(v.reasons, vec![Reason::ScoreDrop]);
        assert!((v.drop - 0.06).abs() < 1e-12, "{v:?}");
        assert_eq!((v.baseline_meals, v.recent_meals), (8, 8));
        let v = verdict(&scores(0.80, 8), &scores(0.75, 8), None).expect("enough meals");
        assert!(v.reasons.is_empty(), "0.05 is not enough: {v:?}");
        // scores that rose
        let v = verdict(&scores(0.70, 8), &scores(0.80, 9), None).expect("enough meals");
        assert!(v.reasons.is_empty() && v.drop < 0.0, "{v:?}");
    }

    #[test]
    fn recent_scores_close_to_the_threshold_are_prompted_without_a_drop() {
        let v = verdict(&scores(0.70, 8), &scores(0.69, 8), Some(0.66)).expect("enough");
        assert_eq!(v.reasons, vec![Reason::NearThreshold]);
        let v = verdict(&scores(0.70, 8), &scores(0.69, 8), Some(0.65)).expect("enough");
        assert!(v.reasons.is_empty(), "0.04 above: {v:?}");
        let v = verdict(&scores(0.70, 8), &scores(0.69, 8), None).expect("enough");
        assert!(v.reasons.is_empty(), "no threshold known: {v:?}");
        let v = verdict(&scores(0.80, 8), &scores(0.64, 8), Some(0.62)).expect("enough");
        assert_eq!(v.reasons, vec![Reason::ScoreDrop, Reason::NearThreshold]);
    }

    #[test]
    fn fewer_than_eight_meals_on_either_side_gives_no_verdict() {
        assert_eq!(
            verdict(&scores(0.80, 7), &scores(0.50, 20), Some(0.6)),
            None
        );
        assert_eq!(
            verdict(&scores(0.80, 20), &scores(0.50, 7), Some(0.6)),
            None
        );
    }

    fn meal(n: i64, date: &str, score: f64, early: bool) -> db::ageing::FaceMeal {
        db::ageing::FaceMeal {
            resident_id: ResidentId(7),
            name: "张三丰".into(),
            enrolled_at: "2026-01-05T02:00:00.000Z".into(),
            local_date: date.parse().expect("date"),
            match_score: score,
            kiosk_threshold: Some(0.62),
            early,
            n,
        }
    }

    #[test]
    fn a_sparse_first_month_takes_the_first_eight_meals_and_recent_leaves_them_out() {
        let from: NaiveDate = "2026-02-16".parse().expect("date");
        // three meals in the first 28 days, then one a week until recent days
        let mut meals = vec![
            meal(1, "2026-01-06", 0.82, true),
            meal(2, "2026-01-13", 0.80, true),
            meal(3, "2026-01-20", 0.84, true),
        ];
        for (i, d) in ["02-03", "02-10", "02-17", "02-18", "02-19"]
            .iter()
            .enumerate()
        {
            meals.push(meal(4 + i as i64, &format!("2026-{d}"), 0.80, false));
        }
        // meals 6..=8 are in the recent window but are baseline meals: not recent ones
        for d in 20..=27 {
            meals.push(meal(
                meals.len() as i64 + 1,
                &format!("2026-02-{d}"),
                0.70,
                false,
            ));
        }
        let s = judge(&meals, from).expect("prompted");
        assert_eq!(s.verdict.baseline_meals, 8);
        assert_eq!(s.verdict.recent_meals, 8);
        assert!((s.verdict.baseline - 0.80).abs() < 1e-12, "{s:?}");
        assert!((s.verdict.recent - 0.70).abs() < 1e-12, "{s:?}");
        assert_eq!(s.verdict.reasons, vec![Reason::ScoreDrop]);
        assert_eq!(s.name, "张*丰");
        // a week fewer of recent meals: too few, no verdict
        assert_eq!(judge(&meals[..meals.len() - 1], from), None);
    }
}
