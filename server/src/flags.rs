//! Audit red flags: the patterns finance looks at before it closes a month, each with the
//! evidence to decide it (what was expected, what was seen, the meals behind it, a link).
//!
//! Flags are computed, not stored: the same data gives the same flags with the same keys, so a
//! review (explained, or confirmed: the meals' subsidy is withheld) stays attached to its flag.
//! The SQL is in `db::flags`; the thresholds are [`Rules`] (configuration, documented defaults).

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::json;
use zhucan_domain::api::{Flag, FlagReview, Severity};
use zhucan_domain::{CanteenId, Fen, ResidentId};

use crate::db::{self, Conn, Tx, audit::Actor};

/// How many meal ids a flag lists (all are counted).
const IDS: usize = 500;

/// The thresholds of the flags. Defaults are documented in ARCHITECTURE.md and `--help`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// A slot with at least this many meals, more than the residents who live in the canteen's
    /// town or are designated to it, is above the roster (a handful of visitors is not).
    pub roster_min_meals: i64,
    /// A day is a jump when its meals exceed `jump_factor` × the trailing 28 days' mean and the
    /// mean by `jump_min_extra` meals (the mean over at least 10 serving days).
    pub jump_factor: f64,
    pub jump_min_extra: i64,
    /// The same daily count on this many consecutive serving days (each at least 5 meals).
    pub flat_days: usize,
    /// Two attempts for one resident at two canteens closer than this are one too many.
    pub travel_minutes: i64,
    /// Staff-confirmed meals above this share of a canteen's meals (with at least 20 meals), and
    /// meals one person entered on the server above this share.
    pub manual_share: f64,
    /// A resident with at least `borderline_min_meals` face meals of which `borderline_share`
    /// scored within `borderline_margin` above their kiosk's threshold.
    pub borderline_margin: f64,
    pub borderline_min_meals: i64,
    pub borderline_share: f64,
    /// A kiosk whose mean match or liveness score of the month fell this much below its mean of
    /// the three months before (at least `drift_min_meals` face meals in each).
    pub drift: f64,
    pub drift_min_meals: i64,
    /// The match threshold assumed for a kiosk that never reported one.
    pub default_match_threshold: f64,
    /// Meals a canteen may record above a spot check's headcount (`--spot-check-tolerance`).
    pub spot_check_tolerance: u32,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            roster_min_meals: 5,
            jump_factor: 1.8,
            jump_min_extra: 15,
            flat_days: 7,
            travel_minutes: 90,
            manual_share: 0.2,
            borderline_margin: 0.04,
            borderline_min_meals: 8,
            borderline_share: 0.75,
            drift: 0.08,
            drift_min_meals: 30,
            default_match_threshold: 0.62,
            spot_check_tolerance: 2,
        }
    }
}

/// The flags' thresholds on the command line (or in the environment); the rest keep their
/// defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct FlagArgs {
    /// A day whose meals exceed this many times the canteen's trailing 28-day mean is a jump.
    #[arg(long, env = "ZHUCAN_FLAG_JUMP_FACTOR", default_value_t = Rules::default().jump_factor)]
    pub flag_jump_factor: f64,
    /// The same daily count this many serving days running is flagged.
    #[arg(long, env = "ZHUCAN_FLAG_FLAT_DAYS", default_value_t = Rules::default().flat_days)]
    pub flag_flat_days: usize,
    /// One resident at two canteens closer than this many minutes is flagged.
    #[arg(long, env = "ZHUCAN_FLAG_TRAVEL_MINUTES", default_value_t = Rules::default().travel_minutes)]
    pub flag_travel_minutes: i64,
    /// Staff-confirmed (or one person's server-entered) meals above this share of a canteen's.
    #[arg(long, env = "ZHUCAN_FLAG_MANUAL_SHARE", default_value_t = Rules::default().manual_share)]
    pub flag_manual_share: f64,
    /// Face matches within this margin above the kiosk's threshold count as borderline.
    #[arg(long, env = "ZHUCAN_FLAG_BORDERLINE_MARGIN", default_value_t = Rules::default().borderline_margin)]
    pub flag_borderline_margin: f64,
}

impl Default for FlagArgs {
    fn default() -> FlagArgs {
        let d = Rules::default();
        FlagArgs {
            flag_jump_factor: d.jump_factor,
            flag_flat_days: d.flat_days,
            flag_travel_minutes: d.travel_minutes,
            flag_manual_share: d.manual_share,
            flag_borderline_margin: d.borderline_margin,
        }
    }
}

impl FlagArgs {
    pub fn rules(&self) -> Rules {
        Rules {
            jump_factor: self.flag_jump_factor,
            flat_days: self.flag_flat_days,
            travel_minutes: self.flag_travel_minutes,
            manual_share: self.flag_manual_share,
            borderline_margin: self.flag_borderline_margin,
            ..Rules::default()
        }
    }
}

/// The first and last day of `month` (`YYYY-MM`).
pub fn month_days(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (y, m) = crate::period::parse_month(month)?;
    let first = NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)?
    };
    Some((first, next - Duration::days(1)))
}

fn month_before(first: NaiveDate, n: u32) -> String {
    let mut d = first;
    for _ in 0..n {
        d = (d - Duration::days(1)).with_day(1).unwrap_or(d);
    }
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Everything a flag needs besides what its kind computes.
struct Builder<'a> {
    conn: &'a Conn<'a>,
    month: &'a str,
    canteens: BTreeMap<i64, String>,
    out: Vec<Flag>,
}

/// One finding before it becomes a flag.
struct Finding<'a> {
    key: String,
    kind: &'static str,
    severity: Severity,
    canteen: Option<i64>,
    resident: Option<i64>,
    kiosk: Option<i64>,
    title_zh: String,
    title_en: String,
    expected: String,
    seen: String,
    /// SQL over `settlements s` selecting the meals behind it (`?1` is the period).
    meals: &'a str,
    args: Vec<Box<dyn db::sql::ToSql>>,
    link: String,
}

impl Builder<'_> {
    fn canteen(&self, id: i64) -> String {
        self.canteens
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    fn push(&mut self, f: Finding<'_>) -> db::Result<()> {
        let args: Vec<&dyn db::sql::ToSql> = f.args.iter().map(|a| a.as_ref()).collect();
        let (ids, meals, subsidy) =
            db::flags::meals_where(self.conn, self.month, f.meals, &args, IDS)?;
        self.out.push(Flag {
            key: f.key,
            kind: f.kind.into(),
            severity: f.severity,
            month: self.month.into(),
            canteen_id: f.canteen.map(CanteenId),
            resident_id: f.resident.map(ResidentId),
            kiosk_id: f.kiosk,
            title_zh: f.title_zh,
            title_en: f.title_en,
            expected: f.expected,
            seen: f.seen,
            settlement_ids: ids,
            meals,
            subsidy,
            link: f.link,
            review: None,
        });
        Ok(())
    }

    fn canteen_link(&self, id: i64) -> String {
        format!("/finance/canteens/{id}?month={}", self.month)
    }

    fn resident_link(&self, id: i64) -> String {
        format!("/finance/residents/{id}?month={}", self.month)
    }
}

/// The flags of `month` (`YYYY-MM`), optionally of one canteen, with their reviews; most severe
/// first. Reads only.
pub fn compute(
    conn: &Conn,
    month: &str,
    canteen: Option<CanteenId>,
    rules: &Rules,
) -> db::Result<Vec<Flag>> {
    let Some((first, last)) = month_days(month) else {
        return Err(db::Error::invalid("month", "must be YYYY-MM"));
    };
    let canteens = db::canteens::all(conn)?
        .into_iter()
        .map(|c| (c.id.0, c.name))
        .collect();
    let mut b = Builder {
        conn,
        month,
        canteens,
        out: Vec::new(),
    };
    let slots = db::flags::slot_counts(conn, month, canteen)?;
    roster_and_rhythm(&mut b, &slots, first, last, canteen, rules)?;
    calendar(&mut b, canteen)?;
    people(&mut b, canteen, rules)?;
    manual_and_late(&mut b, &slots, canteen, rules)?;
    scores(&mut b, first, canteen, rules)?;
    lookalikes(&mut b, canteen)?;
    b.out.extend(crate::spot_checks::flags(
        conn,
        month,
        canteen,
        rules.spot_check_tolerance,
    )?);

    let reviews = db::flags::reviews(conn, month)?;
    let mut flags = b.out;
    for f in &mut flags {
        if let Some(r) = reviews.get(&f.key) {
            f.review = Some(FlagReview {
                state: r.state.clone(),
                note: r.note.clone(),
                by: r.by.clone(),
                at: chrono::DateTime::parse_from_rfc3339(&r.at)
                    .map(|t| t.to_utc())
                    .unwrap_or_default(),
            });
        }
    }
    flags.sort_by(|a, b| (a.severity, &a.kind, &a.key).cmp(&(b.severity, &b.kind, &b.key)));
    Ok(flags)
}

/// Meals above the roster, sudden jumps against the trailing weeks, the same count day after day.
fn roster_and_rhythm(
    b: &mut Builder<'_>,
    slots: &[db::flags::SlotCount],
    first: NaiveDate,
    last: NaiveDate,
    canteen: Option<CanteenId>,
    rules: &Rules,
) -> db::Result<()> {
    // above the roster: one flag per canteen, over every slot-day above it
    let rosters = db::flags::rosters(b.conn, &first.to_string())?;
    let mut per: BTreeMap<i64, Vec<(String, String, i64, i64)>> = BTreeMap::new();
    for sc in slots {
        let roster = rosters.get(&sc.canteen_id).copied().unwrap_or(0);
        if sc.meals >= rules.roster_min_meals && sc.meals > roster {
            per.entry(sc.canteen_id).or_default().push((
                sc.date.clone(),
                sc.slot.clone(),
                sc.meals,
                roster,
            ));
        }
    }
    for (c, days) in per {
        let roster = days.first().map_or(0, |d| d.3);
        let peak = days.iter().map(|d| d.2).max().unwrap_or(0);
        let list: Vec<String> = days.iter().map(|d| format!("{} {}", d.0, d.1)).collect();
        let filter = days
            .iter()
            .map(|_| "(s.local_date = ? AND s.slot = ?)")
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut args: Vec<Box<dyn db::sql::ToSql>> = vec![Box::new(c)];
        for d in &days {
            args.push(Box::new(d.0.clone()));
            args.push(Box::new(d.1.clone()));
        }
        let meals = format!("s.canteen_id = ? AND ({filter})");
        let name = b.canteen(c);
        b.push(Finding {
            key: format!("above_roster:canteen:{c}"),
            kind: "above_roster",
            severity: Severity::High,
            canteen: Some(c),
            resident: None,
            kiosk: None,
            title_zh: format!("{name}：就餐人次超过可就餐老人数"),
            title_en: format!("{name}: more meals in a slot than residents who could eat there"),
            expected: format!("每餐至多 {roster} 人次 / at most {roster} meals a slot"),
            seen: format!(
                "{} 个餐次超出，最多 {peak} 人次：{} / {} slots above, up to {peak}",
                days.len(),
                list.join("、"),
                days.len()
            ),
            meals: &meals,
            args,
            link: b.canteen_link(c),
        })?;
    }

    // jumps and flat counts from the daily counts of the month and the 28 days before it
    let from = first - Duration::days(28);
    let daily = db::flags::daily_counts(b.conn, &from.to_string(), &last.to_string(), canteen)?;
    for (c, days) in daily {
        let counts: Vec<(NaiveDate, i64)> = days
            .iter()
            .filter_map(|(d, n)| Some((d.parse().ok()?, *n)))
            .collect();
        let mut jumps = Vec::new();
        for (i, (day, n)) in counts.iter().enumerate() {
            if *day < first {
                continue;
            }
            let window: Vec<i64> = counts[..i]
                .iter()
                .filter(|(d, _)| *d >= *day - Duration::days(28))
                .map(|(_, n)| *n)
                .collect();
            if window.len() < 10 {
                continue;
            }
            let mean = window.iter().sum::<i64>() as f64 / window.len() as f64;
            if *n as f64 > mean * rules.jump_factor
                && *n as f64 > mean + rules.jump_min_extra as f64
            {
                jumps.push((*day, *n, mean));
            }
        }
        if !jumps.is_empty() {
            let name = b.canteen(c);
            let list: Vec<String> = jumps
                .iter()
                .map(|(d, n, m)| format!("{d}: {n} ({m:.0})"))
                .collect();
            let placeholders = vec!["?"; jumps.len()].join(", ");
            let meals = format!("s.canteen_id = ? AND s.local_date IN ({placeholders})");
            let mut args: Vec<Box<dyn db::sql::ToSql>> = vec![Box::new(c)];
            for (d, _, _) in &jumps {
                args.push(Box::new(d.to_string()));
            }
            b.push(Finding {
                key: format!("jump:canteen:{c}"),
                kind: "jump",
                severity: Severity::Medium,
                canteen: Some(c),
                resident: None,
                kiosk: None,
                title_zh: format!("{name}：日就餐人次突增"),
                title_en: format!("{name}: sudden jump in daily meals"),
                expected: format!(
                    "不超过前 28 天日均的 {:.1} 倍 / at most {:.1}× the trailing 28-day mean",
                    rules.jump_factor, rules.jump_factor
                ),
                seen: list.join("; "),
                meals: &meals,
                args,
                link: b.canteen_link(c),
            })?;
        }
        // the same count on `flat_days` consecutive serving days of the month
        let month_counts: Vec<(NaiveDate, i64)> = counts
            .iter()
            .filter(|(d, _)| *d >= first)
            .copied()
            .collect();
        let mut start = 0;
        while start < month_counts.len() {
            let mut end = start + 1;
            while end < month_counts.len() && month_counts[end].1 == month_counts[start].1 {
                end += 1;
            }
            let run = &month_counts[start..end];
            if run.len() >= rules.flat_days && run[0].1 >= 5 {
                let (d0, d1, n) = (run[0].0, run[run.len() - 1].0, run[0].1);
                let name = b.canteen(c);
                let meals = "s.canteen_id = ? AND s.local_date BETWEEN ? AND ?";
                b.push(Finding {
                    key: format!("flat_count:canteen:{c}:{d0}"),
                    kind: "flat_count",
                    severity: Severity::Medium,
                    canteen: Some(c),
                    resident: None,
                    kiosk: None,
                    title_zh: format!("{name}：连续 {} 天就餐人次完全相同", run.len()),
                    title_en: format!("{name}: the same count {} days running", run.len()),
                    expected: "每日人次自然波动 / daily counts vary".into(),
                    seen: format!("{d0}..{d1} 每天 {n} 人次 / {n} meals every day"),
                    meals,
                    args: vec![
                        Box::new(c),
                        Box::new(d0.to_string()),
                        Box::new(d1.to_string()),
                    ],
                    link: b.canteen_link(c),
                })?;
            }
            start = end;
        }
    }
    Ok(())
}

/// Meals on days the canteen was closed.
fn calendar(b: &mut Builder<'_>, canteen: Option<CanteenId>) -> db::Result<()> {
    for (c, date, reason, n) in db::flags::on_closed_days(b.conn, b.month, canteen)? {
        let name = b.canteen(c);
        b.push(Finding {
            key: format!("closed_day:canteen:{c}:{date}"),
            kind: "closed_day",
            severity: Severity::High,
            canteen: Some(c),
            resident: None,
            kiosk: None,
            title_zh: format!("{name}：闭餐日有就餐记录"),
            title_en: format!("{name}: meals on a day it was closed"),
            expected: format!("{date} 闭餐（{reason}），0 人次 / closed, no meals"),
            seen: format!("{n} 人次 / {n} meals"),
            meals: "s.canteen_id = ? AND s.local_date = ?",
            args: vec![Box::new(c), Box::new(date.clone())],
            link: b.canteen_link(c),
        })?;
    }
    Ok(())
}

/// Meals after a death or during an absence; one resident at two canteens too close in time.
fn people(b: &mut Builder<'_>, canteen: Option<CanteenId>, rules: &Rules) -> db::Result<()> {
    for m in db::flags::after_death(b.conn, b.month, canteen)? {
        let name = b.canteen(m.canteen_id);
        b.push(Finding {
            key: format!("after_death:resident:{}:{}", m.resident_id, m.canteen_id),
            kind: "after_death",
            severity: Severity::High,
            canteen: Some(m.canteen_id),
            resident: Some(m.resident_id),
            kiosk: None,
            title_zh: format!("{}：已故（{}）后在{name}仍有就餐", m.name, m.why),
            title_en: format!("{}: meals at {name} after their death on {}", m.name, m.why),
            expected: format!("{} 之后 0 人次 / no meals after {}", m.why, m.why),
            seen: format!("{} 人次 / {} meals", m.meals, m.meals),
            meals: "s.resident_id = ? AND s.canteen_id = ? AND s.local_date > ?",
            args: vec![
                Box::new(m.resident_id),
                Box::new(m.canteen_id),
                Box::new(m.why.clone()),
            ],
            link: b.resident_link(m.resident_id),
        })?;
    }
    for m in db::flags::while_away(b.conn, b.month, canteen)? {
        let name = b.canteen(m.canteen_id);
        let absence = m.absence.unwrap_or_default();
        b.push(Finding {
            key: format!("while_away:absence:{absence}:{}", m.canteen_id),
            kind: "while_away",
            severity: Severity::High,
            canteen: Some(m.canteen_id),
            resident: Some(m.resident_id),
            kiosk: None,
            title_zh: format!("{}：登记外出/住院期间在{name}就餐", m.name),
            title_en: format!("{}: meals at {name} while recorded away", m.name),
            expected: format!("{} 期间 0 人次 / no meals while away", m.why),
            seen: format!("{} 人次 / {} meals", m.meals, m.meals),
            meals: "s.resident_id = ? AND s.canteen_id = ? AND s.local_date BETWEEN
                (SELECT from_date FROM resident_absences WHERE id = ?)
                AND (SELECT to_date FROM resident_absences WHERE id = ?)",
            args: vec![
                Box::new(m.resident_id),
                Box::new(m.canteen_id),
                Box::new(absence),
                Box::new(absence),
            ],
            link: b.resident_link(m.resident_id),
        })?;
    }
    for (r, name, first, c1, c2, second, minutes) in
        db::flags::two_canteens(b.conn, b.month, rules.travel_minutes, canteen)?
    {
        let (n1, n2) = (b.canteen(c1), b.canteen(c2));
        b.push(Finding {
            key: format!("two_canteens:resident:{r}:{first}"),
            kind: "two_canteens",
            severity: Severity::High,
            canteen: Some(c1),
            resident: Some(r),
            kiosk: None,
            title_zh: format!("{name}：{minutes} 分钟内在两个食堂刷卡/刷脸"),
            title_en: format!("{name}: at two canteens {minutes} minutes apart"),
            expected: format!(
                "两处之间至少 {} 分钟 / at least {} minutes between canteens",
                rules.travel_minutes, rules.travel_minutes
            ),
            seen: format!("{n1} → {n2}：{minutes} 分钟 / minutes"),
            meals: "s.id IN (?, ?)",
            args: vec![Box::new(first), Box::new(second)],
            link: b.resident_link(r),
        })?;
    }
    Ok(())
}

/// Staff-confirmed and server-entered shares; meals that reached the server late.
fn manual_and_late(
    b: &mut Builder<'_>,
    slots: &[db::flags::SlotCount],
    canteen: Option<CanteenId>,
    rules: &Rules,
) -> db::Result<()> {
    // per canteen: (meals, staff meals, late meals, the largest delay)
    let mut per: BTreeMap<i64, (i64, i64, i64, i64)> = BTreeMap::new();
    for sc in slots {
        let e = per.entry(sc.canteen_id).or_default();
        e.0 += sc.meals;
        e.1 += sc.staff;
        e.2 += sc.late;
        e.3 = e.3.max(sc.max_late_seconds);
    }
    let totals: BTreeMap<i64, i64> = per.iter().map(|(c, v)| (*c, v.0)).collect();
    for (&c, &(all, staff, _, _)) in &per {
        if all < 20 || (staff as f64) / (all as f64) <= rules.manual_share {
            continue;
        }
        let name = b.canteen(c);
        let pct = 100.0 * staff as f64 / all as f64;
        b.push(Finding {
            key: format!("manual_share:canteen:{c}"),
            kind: "manual_share",
            severity: Severity::Medium,
            canteen: Some(c),
            resident: None,
            kiosk: None,
            title_zh: format!("{name}：人工确认就餐占比过高"),
            title_en: format!("{name}: high share of staff-confirmed meals"),
            expected: format!(
                "不超过 {:.0}% / at most {:.0}%",
                rules.manual_share * 100.0,
                rules.manual_share * 100.0
            ),
            seen: format!("{staff}/{all} = {pct:.1}%"),
            meals: "s.canteen_id = ? AND s.method = 'staff'",
            args: vec![Box::new(c)],
            link: b.canteen_link(c),
        })?;
    }
    for (actor, c, n) in db::flags::staff_entries_by_actor(b.conn, b.month, canteen)? {
        let all = totals.get(&c).copied().unwrap_or(0);
        if all < 20 || (n as f64) / (all as f64) <= rules.manual_share {
            continue;
        }
        let name = b.canteen(c);
        let pct = 100.0 * n as f64 / all as f64;
        b.push(Finding {
            key: format!("manual_share_operator:{actor}:{c}"),
            kind: "manual_share_operator",
            severity: Severity::Medium,
            canteen: Some(c),
            resident: None,
            kiosk: None,
            title_zh: format!("{actor} 在{name}于服务器录入的就餐占比过高"),
            title_en: format!("{actor}: high share of {name}'s meals entered on the server"),
            expected: format!(
                "不超过 {:.0}% / at most {:.0}%",
                rules.manual_share * 100.0,
                rules.manual_share * 100.0
            ),
            seen: format!("{n}/{all} = {pct:.1}%"),
            meals: "s.canteen_id = ? AND s.id IN (SELECT substr(a.target, 12) FROM audit_log a
                WHERE a.action = 'settlement.staff_entry' AND a.actor = ?)",
            args: vec![Box::new(c), Box::new(actor.clone())],
            link: b.canteen_link(c),
        })?;
    }
    for (&c, &(_, _, n, max_late)) in per.iter().filter(|(_, v)| v.2 > 0) {
        let name = b.canteen(c);
        let hours = max_late / 3600;
        b.push(Finding {
            key: format!("late_upload:canteen:{c}"),
            kind: "late_upload",
            severity: if hours >= 72 {
                Severity::Medium
            } else {
                Severity::Low
            },
            canteen: Some(c),
            resident: None,
            kiosk: None,
            title_zh: format!("{name}：就餐记录迟报"),
            title_en: format!("{name}: meals reached the server late"),
            expected: "当天上传 / sent the same day".into(),
            seen: format!("{n} 人次迟报，最长 {hours} 小时 / {n} late, up to {hours} h"),
            meals: "s.canteen_id = ? AND s.late_by_seconds IS NOT NULL",
            args: vec![Box::new(c)],
            link: b.canteen_link(c),
        })?;
    }
    Ok(())
}

/// Residents whose face matches barely clear the threshold; kiosks whose scores drift down.
fn scores(
    b: &mut Builder<'_>,
    first: NaiveDate,
    canteen: Option<CanteenId>,
    rules: &Rules,
) -> db::Result<()> {
    let stats = db::flags::face_stats(
        b.conn,
        b.month,
        rules.default_match_threshold,
        rules.borderline_margin,
        canteen,
    )?;
    // per resident: (canteen of most of their face meals, meals, borderline, score sum)
    let mut residents: BTreeMap<i64, (i64, i64, i64, f64, i64)> = BTreeMap::new();
    // per kiosk this month: (canteen, meals, match sum, liveness sum)
    let mut now: BTreeMap<i64, (i64, i64, f64, f64)> = BTreeMap::new();
    for st in &stats {
        let e = residents.entry(st.resident_id).or_default();
        if st.meals > e.4 {
            e.0 = st.canteen_id;
            e.4 = st.meals;
        }
        e.1 += st.meals;
        e.2 += st.close;
        e.3 += st.match_sum;
        if let Some(k) = st.kiosk_id {
            let e = now.entry(k).or_insert((st.canteen_id, 0, 0.0, 0.0));
            e.1 += st.meals;
            e.2 += st.match_sum;
            e.3 += st.liveness_sum;
        }
    }
    let names = if residents
        .values()
        .any(|v| v.1 >= rules.borderline_min_meals)
    {
        db::residents::names(b.conn)?
    } else {
        Default::default()
    };
    for (&r, &(c, n, close, sum, _)) in &residents {
        if n < rules.borderline_min_meals || (close as f64) / (n as f64) < rules.borderline_share {
            continue;
        }
        let name = names.get(&r).map(|x| x.0.clone()).unwrap_or_default();
        let mean = sum / n as f64;
        b.push(Finding {
            key: format!("borderline_scores:resident:{r}"),
            kind: "borderline_scores",
            severity: Severity::Medium,
            canteen: Some(c),
            resident: Some(r),
            kiosk: None,
            title_zh: format!("{name}：人脸匹配分数长期仅略高于阈值（可能他人冒用）"),
            title_en: format!("{name}: face matches barely above the threshold, week after week"),
            expected: format!(
                "少于 {:.0}% 的刷脸在阈值 +{:.2} 以内 / under {:.0}% within +{:.2}",
                rules.borderline_share * 100.0,
                rules.borderline_margin,
                rules.borderline_share * 100.0,
                rules.borderline_margin
            ),
            seen: format!("{close}/{n}，平均 {mean:.3} / mean {mean:.3}"),
            meals: "s.resident_id = ? AND s.method = 'face'",
            args: vec![Box::new(r)],
            link: b.resident_link(r),
        })?;
    }
    if now.values().all(|v| v.1 < rules.drift_min_meals) {
        return Ok(());
    }
    let before: Vec<String> = (1..=3).map(|n| month_before(first, n)).collect();
    let then = db::flags::kiosk_scores(b.conn, &before, canteen)?;
    for (k, (c, n, msum, lsum)) in now {
        let (m, l) = (msum / n.max(1) as f64, lsum / n.max(1) as f64);
        let Some((_, n0, m0, l0)) = then.get(&k).copied() else {
            continue;
        };
        if n < rules.drift_min_meals || n0 < rules.drift_min_meals {
            continue;
        }
        let (dm, dl) = (m0 - m, l0 - l);
        if dm < rules.drift && dl < rules.drift {
            continue;
        }
        let name = b.canteen(c);
        b.push(Finding {
            key: format!("score_drift:kiosk:{k}"),
            kind: "score_drift",
            severity: Severity::Low,
            canteen: Some(c),
            resident: None,
            kiosk: Some(k),
            title_zh: format!("{name} 终端 #{k}：人脸分数下滑"),
            title_en: format!("{name} kiosk #{k}: face scores drift down"),
            expected: format!(
                "匹配 {m0:.3}、活体 {l0:.3}（前三个月均值） / match {m0:.3}, liveness {l0:.3}"
            ),
            seen: format!("匹配 {m:.3}、活体 {l:.3} / match {m:.3}, liveness {l:.3}"),
            meals: "s.kiosk_id = ? AND s.method = 'face'",
            args: vec![Box::new(k)],
            link: b.canteen_link(c),
        })?;
    }
    Ok(())
}

/// Two residents whose faces match each other (found by the scan, or confirmed by staff at
/// enrolment as two people): one person may be enrolled twice. Listed every month, with both
/// residents' meals of the month behind it.
fn lookalikes(b: &mut Builder<'_>, canteen: Option<CanteenId>) -> db::Result<()> {
    for p in db::lookalikes::list(b.conn)? {
        let (ra, rb) = (p.resident_a.0, p.resident_b.0);
        let (meals, args): (&str, Vec<Box<dyn db::sql::ToSql>>) = match canteen {
            Some(c) => (
                "s.resident_id IN (?, ?) AND s.canteen_id = ?",
                vec![Box::new(ra), Box::new(rb), Box::new(c.0)],
            ),
            None => ("s.resident_id IN (?, ?)", vec![Box::new(ra), Box::new(rb)]),
        };
        let confirmed = p.state == "confirmed";
        let before = b.out.len();
        b.push(Finding {
            key: format!("lookalike:{ra}:{rb}"),
            kind: "lookalike",
            severity: if confirmed {
                Severity::Low
            } else {
                Severity::High
            },
            canteen: None,
            resident: Some(ra),
            kiosk: None,
            title_zh: format!("{} 与 {} 的人脸相似，可能为同一人重复登记", p.name_a, p.name_b),
            title_en: format!(
                "{} and {}: faces alike, possibly one person enrolled twice",
                p.name_a, p.name_b
            ),
            expected: "不同老人的人脸不相似 / different residents, different faces".into(),
            seen: match (&p.reason, &p.by) {
                (Some(r), Some(by)) => format!(
                    "相似度 {:.3}；登记时 {by} 确认为两人：{r} / similarity {:.3}, confirmed as two people",
                    p.score, p.score
                ),
                _ => format!("相似度 {:.3} / similarity {:.3}", p.score, p.score),
            },
            meals,
            args,
            link: b.resident_link(ra),
        })?;
        // a canteen's view lists a pair only where either of them ate there
        if canteen.is_some() && b.out.last().is_some_and(|f| f.meals == 0) {
            b.out.truncate(before);
        }
    }
    Ok(())
}

/// A review decision on a flag.
#[derive(Debug, Clone)]
pub struct Decision {
    pub month: String,
    pub key: String,
    /// `explained` or `confirmed`.
    pub state: String,
    pub note: String,
}

/// What a review did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reviewed {
    pub withheld: usize,
    pub released: usize,
    pub withheld_fen: Fen,
}

/// Records a review of `flag` (computed just before, from the same data) in `tx`: `confirmed`
/// withholds the subsidy of its meals in the month, `explained` releases what an earlier
/// confirmation withheld. Audited. The month must be open (a closed month never changes).
pub fn review(
    tx: &Tx<'_>,
    flag: &Flag,
    d: &Decision,
    actor: &Actor,
    at: &str,
) -> db::Result<Reviewed> {
    if db::months::is_closed(tx, &d.month)? {
        return Err(db::Error::Conflict(format!(
            "month {} is closed: its flags can no longer change what it pays",
            d.month
        )));
    }
    db::flags::put_review(
        tx,
        &d.month,
        &flag.kind,
        &db::flags::Review {
            flag_key: flag.key.clone(),
            state: d.state.clone(),
            note: d.note.clone(),
            by: actor.name.clone(),
            at: at.to_owned(),
        },
    )?;
    let mut out = Reviewed {
        withheld: 0,
        released: 0,
        withheld_fen: Fen::ZERO,
    };
    if d.state == "confirmed" {
        // every meal behind it, not only the listed ids
        let all = all_ids(flag)?;
        out.withheld = db::flags::withhold(tx, &d.month, &flag.key, &all, at, &actor.name)?;
        out.withheld_fen = db::flags::withheld(tx, &d.month, None, None)?
            .iter()
            .filter(|w| w.flag_key == flag.key)
            .map(|w| w.subsidy)
            .sum();
    } else {
        out.released = db::flags::release(tx, &d.month, &flag.key)?;
    }
    db::audit::append(
        tx,
        at,
        actor,
        &format!("flag.{}", d.state),
        &format!("flag:{}:{}", d.month, flag.key),
        &json!({
            "kind": flag.kind,
            "note": d.note,
            "meals": flag.meals,
            "withheld": out.withheld,
            "withheld_fen": out.withheld_fen.0,
            "released": out.released,
        }),
    )?;
    Ok(out)
}

/// Finds flag `d.key` of `d.month` as it stands in `tx` and records the decision on it
/// ([`review`]); the API and the dashboard's form both come here. Returns the flag with its new
/// review and what the decision did.
pub fn review_by_key(
    tx: &Tx<'_>,
    d: &Decision,
    actor: &Actor,
    at: &str,
    rules: &Rules,
) -> db::Result<(Flag, Reviewed)> {
    let mut flag = compute(tx, &d.month, None, rules)?
        .into_iter()
        .find(|f| f.key == d.key)
        .ok_or_else(|| {
            db::Error::invalid("key", "no such flag in this month (it may have cleared)")
        })?;
    let done = review(tx, &flag, d, actor, at)?;
    flag.review = Some(FlagReview {
        state: d.state.clone(),
        note: d.note.clone(),
        by: actor.name.clone(),
        at: chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| t.to_utc())
            .unwrap_or_default(),
    });
    Ok((flag, done))
}

/// All the meal ids behind a flag (its list stops at 500; a flag with more is rare).
fn all_ids(flag: &Flag) -> db::Result<Vec<uuid::Uuid>> {
    if (flag.settlement_ids.len() as i64) < flag.meals {
        return Err(db::Error::Conflict(format!(
            "flag {} stands on {} meals, more than {IDS} can be confirmed at once: confirm \
             it per canteen or resident",
            flag.key, flag.meals
        )));
    }
    Ok(flag.settlement_ids.clone())
}
