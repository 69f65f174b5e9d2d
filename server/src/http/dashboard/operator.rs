//! The operator's day: the live tally of their canteen, the meals with method and scores, void
//! with a reason, staff check-in for a resident without a face match, resident look-up, and the
//! residents to invite to enrol their face again (`crate::ageing`: a prompt, nothing changed).

use askama::Template;
use axum::extract::{Query, State};
use chrono::NaiveDate;
use serde::Deserialize;
use uuid::Uuid;
use zhucan_domain::api::{ItemStatus, SettlementItem};
use zhucan_domain::{CanteenId, Method, ResidentId};

use super::{
    Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, local_time, method_label, qs,
    see_other, slot_label, today, yuan,
};
use crate::db::users::Role;
use crate::http::AppState;
use crate::{corrections, db, ingest, reports};

/// A canteen in the picker.
pub struct Choice {
    pub id: i64,
    pub name: String,
    pub selected: bool,
}

/// One meal row, display-ready.
pub struct MealView {
    pub id: String,
    pub time: String,
    pub slot: String,
    pub resident: String,
    pub resident_id: i64,
    pub method: String,
    pub method_code: String,
    pub score: String,
    pub low: bool,
    pub price: String,
    pub subsidy: String,
    pub self_pay: String,
    pub status: String,
    pub bad: bool,
    pub voided: bool,
    /// A void of it waits for a second person (four-eyes).
    pub pending: bool,
    pub can_void: bool,
    pub note: String,
}

/// A kiosk's last heartbeat, display-ready.
pub struct KioskView {
    pub name: String,
    pub seen: String,
    pub stale: bool,
    pub backlog: String,
    pub software: String,
    pub model: String,
}

/// Minutes after which a kiosk that has not called in is shown as offline.
const KIOSK_STALE_MINUTES: i64 = 10;

/// One look-up hit.
pub struct HitView {
    pub id: i64,
    pub name: String,
    pub id_masked: String,
    pub card: String,
    pub status: String,
    pub active: bool,
    pub face: String,
}

/// A resident whose face scores call for re-enrolment, display-ready.
pub struct ReEnrolView {
    pub name: String,
    pub resident_id: i64,
    pub enrolled_on: String,
    pub baseline: String,
    pub recent: String,
    pub drop: String,
    pub baseline_meals: usize,
    pub recent_meals: usize,
    pub threshold: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "operator.html")]
struct OperatorPage {
    page: Chrome,
    canteens: Vec<Choice>,
    canteen_id: i64,
    canteen_name: String,
    date: String,
    is_today: bool,
    slots: Vec<(String, i64, String, String)>,
    meals_total: String,
    subsidy_total: String,
    self_pay_total: String,
    live_url: String,
    live_sig: String,
    meals: Vec<MealView>,
    q: String,
    hits: Vec<HitView>,
    closed: bool,
    kiosks: Vec<KioskView>,
    re_enrol: Vec<ReEnrolView>,
}

#[derive(Debug, Deserialize)]
pub struct DayQuery {
    canteen: Option<i64>,
    date: Option<String>,
    q: Option<String>,
    msg: Option<String>,
}

/// What a meal's outcome is, in words.
fn status_of(m: &db::dashboard::MealRow, en: bool) -> (String, bool) {
    if m.voided {
        return (if en { "voided" } else { "已作废" }.to_owned(), true);
    }
    if m.outcome == "rejected" {
        let r = m.rejection.as_deref().unwrap_or("");
        let zh = match r {
            "duplicate" => "拒绝：重复就餐",
            "deceased" => "拒绝：已身故",
            "suspended" => "拒绝：已暂停",
            "outside_slot" => "拒绝：非供餐时段",
            _ => "拒绝",
        };
        return (
            if en {
                format!("refused: {r}")
            } else {
                zh.to_owned()
            },
            true,
        );
    }
    match m.eligibility.as_deref() {
        Some("subsidised") => (if en { "subsidised" } else { "已补助" }.to_owned(), false),
        Some(other) => (
            if en {
                format!("full price: {other}")
            } else {
                format!("全价（{other}）")
            },
            true,
        ),
        None => (String::new(), false),
    }
}

pub async fn show(State(st): State<AppState>, v: Viewer, Query(q): Query<DayQuery>) -> PageResult {
    v.require(&[Role::Admin, Role::Operator])?;
    let tz = st.config.timezone;
    let now = st.clock.now();
    let all = st.db.read(db::canteens::all).await?;
    let visible: Vec<_> = all
        .into_iter()
        .filter(|c| v.user.role == Role::Admin || v.user.canteens.contains(&c.id))
        .collect();
    let id = match q.canteen {
        Some(c) => CanteenId(c),
        None => visible
            .first()
            .map(|c| c.id)
            .ok_or_else(|| PageError::Bad("no canteen / 没有可管理的食堂".into()))?,
    };
    v.require_canteen(id)?;
    let date: NaiveDate = match q.date.as_deref() {
        Some(d) if !d.is_empty() => d
            .parse()
            .map_err(|_| PageError::Bad("date must be YYYY-MM-DD".into()))?,
        _ => today(now, tz),
    };
    let search = q.q.clone().unwrap_or_default().trim().to_owned();
    let s2 = search.clone();
    // an exact national ID number finds a visitor, through its blind index (never stored plain)
    let id_index = zhucan_domain::NationalId::parse(&search)
        .ok()
        .map(|n| crate::crypto::blind_index(&st.config.index_key.0, &n));
    let (tally, rows, hits, closed, kiosks, pending, re_enrol) = st
        .db
        .read(move |c| {
            let canteen = db::canteens::get(c, id)?;
            let tally = reports::tally(&canteen, date, db::settlements::day(c, id, date)?);
            let rows = db::dashboard::day_meals(c, id, date)?;
            let hits = if s2.is_empty() {
                Vec::new()
            } else {
                db::dashboard::search_at_canteen(c, &s2, id_index.as_deref(), id, 20)?
            };
            let closed = db::months::is_closed(c, &crate::period::month_of(date))?;
            let kiosks = db::dashboard::kiosks(c, id)?;
            let pending = db::corrections::pending_on_day(c, id, &date.to_string())?;
            let re_enrol = crate::ageing::suggestions(c, id, now, tz)?;
            Ok((tally, rows, hits, closed, kiosks, pending, re_enrol))
        })
        .await?;
    let kiosks = kiosks
        .into_iter()
        .map(|k| {
            let seen = k
                .last_seen_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let minutes = seen.map(|t| (now - t.with_timezone(&chrono::Utc)).num_minutes());
            KioskView {
                name: format!("{} #{}", k.name, k.id),
                seen: match (seen, minutes, v.en) {
                    (Some(t), Some(m), false) => {
                        format!(
                            "{}（{m} 分钟前）",
                            t.with_timezone(&tz).format("%m-%d %H:%M")
                        )
                    }
                    (Some(t), Some(m), true) => {
                        format!(
                            "{} ({m} min ago)",
                            t.with_timezone(&tz).format("%m-%d %H:%M")
                        )
                    }
                    (_, _, false) => "从未连接".into(),
                    (_, _, true) => "never".into(),
                },
                stale: minutes.is_none_or(|m| m > KIOSK_STALE_MINUTES),
                backlog: k.outbox_backlog.map_or("—".into(), |b| b.to_string()),
                software: k.software_version.unwrap_or_else(|| "—".into()),
                model: k.model_version.unwrap_or_else(|| "—".into()),
            }
        })
        .collect();
    let en = v.en;
    let can_void = matches!(v.user.role, Role::Admin | Role::Operator);
    let meals = rows
        .iter()
        .map(|m| {
            let pending = pending.contains(&m.id);
            let (status, bad) = if pending && !m.voided {
                let s = if en {
                    "awaiting a second approval"
                } else {
                    "待复核"
                };
                (s.to_owned(), true)
            } else {
                status_of(m, en)
            };
            let low = m.method == "face" && m.match_score.is_some_and(|s| s < 0.66);
            MealView {
                id: m.id.clone(),
                time: local_time(&m.served_at, tz, false),
                slot: slot_label(m.slot.as_deref(), en).to_owned(),
                resident: reports::mask_name(&m.resident_name),
                resident_id: m.resident_id.0,
                method: method_label(&m.method, en).to_owned(),
                method_code: m.method.clone(),
                score: m.match_score.map_or("—".into(), |s| format!("{s:.2}")),
                low,
                price: yuan(m.price),
                subsidy: yuan(m.subsidy),
                self_pay: yuan(m.self_pay),
                status,
                bad,
                voided: m.voided,
                pending,
                can_void: can_void && m.outcome == "accepted" && !m.voided && !m.closed && !pending,
                note: m
                    .void_reason
                    .clone()
                    .or_else(|| m.staff_reason.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let hits = hits
        .into_iter()
        .map(|h| HitView {
            id: h.id.0,
            name: h.name,
            id_masked: h.national_id_masked,
            card: h.card_code,
            active: h.status == "active",
            status: match (h.status.as_str(), en) {
                ("active", false) => "正常".into(),
                ("suspended", false) => "暂停".into(),
                ("deceased", false) => format!("已身故 {}", h.deceased_on.unwrap_or_default()),
                (s, true) => s.to_owned(),
                (s, false) => s.to_owned(),
            },
            face: match (h.face_enrolled, en) {
                (true, false) => "已录入".into(),
                (false, false) => "未录入".into(),
                (true, true) => "enrolled".into(),
                (false, true) => "not enrolled".into(),
            },
        })
        .collect();
    let re_enrol = re_enrol
        .into_iter()
        .map(|s| {
            let v = &s.verdict;
            ReEnrolView {
                name: s.name.clone(),
                resident_id: s.resident_id.0,
                enrolled_on: chrono::DateTime::parse_from_rfc3339(&s.enrolled_at).map_or_else(
                    |_| s.enrolled_at.clone(),
                    |t| t.with_timezone(&tz).format("%Y-%m-%d").to_string(),
                ),
                baseline: format!("{:.2}", v.baseline),
                recent: format!("{:.2}", v.recent),
                drop: format!("{:.2}", v.drop),
                baseline_meals: v.baseline_meals,
                recent_meals: v.recent_meals,
                threshold: v.threshold.map_or("—".into(), |t| format!("{t:.2}")),
                reason: v
                    .reasons
                    .iter()
                    .map(|r| if en { r.label_en() } else { r.label_zh() })
                    .collect::<Vec<_>>()
                    .join(if en { "; " } else { "；" }),
            }
        })
        .collect();
    let voided = tally.meals.iter().filter(|m| m.voided).count();
    let mut page = v.chrome("今日就餐", "Today's meals", "/operator");
    page.notice = q.msg.unwrap_or_default();
    let slots = tally
        .slots
        .iter()
        .map(|s| {
            (
                slot_label(Some(s.slot.as_str()), en).to_owned(),
                s.amounts.meals,
                yuan(s.amounts.subsidy),
                yuan(s.amounts.self_pay),
            )
        })
        .collect();
    super::render(&OperatorPage {
        canteens: visible
            .iter()
            .map(|c| Choice {
                id: c.id.0,
                name: c.name.clone(),
                selected: c.id == id,
            })
            .collect(),
        canteen_id: id.0,
        canteen_name: tally.canteen_name.clone(),
        date: date.to_string(),
        is_today: date == today(now, tz),
        slots,
        meals_total: tally.totals.meals.to_string(),
        subsidy_total: yuan(tally.totals.subsidy),
        self_pay_total: yuan(tally.totals.self_pay),
        live_url: format!("/api/v1/canteens/{}/tally?date={date}", id.0),
        live_sig: format!("{}:{}", tally.meals.len(), voided),
        meals,
        q: search,
        hits,
        closed,
        kiosks,
        re_enrol,
        page,
    })
}

#[derive(Debug, Deserialize)]
pub struct VoidForm {
    csrf: String,
    id: String,
    reason: String,
    #[serde(default)]
    date: String,
}

impl HasCsrf for VoidForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Voids a meal of the operator's canteen, with a required reason. Meals of a closed month are
/// not voided here (finance corrects them). A large or old meal's void waits for a second
/// person (four-eyes) and the page says so.
pub async fn void(State(st): State<AppState>, p: Posted<VoidForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin, Role::Operator])?;
    let reason = f.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(PageError::Bad(
            "作废原因必填（最多500字）/ a reason is required (at most 500 characters)".into(),
        ));
    }
    let id: Uuid =
        f.id.parse()
            .map_err(|_| PageError::Bad("not a settlement id".into()))?;
    let key = f.id.clone();
    let meal = st
        .db
        .read(move |c| db::dashboard::meal_by_id(c, &key))
        .await?;
    v.require_canteen(meal.canteen_id)?;
    if meal.closed {
        return Err(PageError::Bad(format!(
            "{} 月已结账，不能作废 / month {} is closed",
            meal.period, meal.period
        )));
    }
    let by = format!("user:{}", v.user.name);
    let actor = v.actor();
    let now = st.clock.now();
    let (rules, tz) = (st.config.security.four_eyes, st.config.timezone);
    let out = st
        .db
        .write(move |tx| {
            let who = corrections::Person {
                identity: &by,
                actor: &actor,
            };
            corrections::request_void(tx, id, &reason, &by, &who, &rules, tz, now)
        })
        .await?;
    let msg = match (out, v.en) {
        (corrections::Requested::Applied(_), true) => "Meal voided.",
        (corrections::Requested::Applied(_), false) => "已作废该餐。",
        (corrections::Requested::Pending(_), true) => {
            "Awaiting a second approval: finance or an administrator must approve this void."
        }
        (corrections::Requested::Pending(_), false) => {
            "待复核：该作废须由财务或管理员另一人批准后生效。"
        }
    };
    Ok(see_other(&format!(
        "/operator?canteen={}&date={}&msg={}",
        meal.canteen_id.0,
        qs(if f.date.is_empty() {
            &meal.local_date
        } else {
            &f.date
        }),
        qs(msg)
    )))
}

#[derive(Debug, Deserialize)]
pub struct CheckinForm {
    csrf: String,
    canteen: i64,
    resident: i64,
    reason: String,
}

impl HasCsrf for CheckinForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Staff check-in: a meal settled now, by the ordinary ingest path, with method `staff` and the
/// reason and the user's name recorded.
pub async fn checkin(State(st): State<AppState>, p: Posted<CheckinForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin, Role::Operator])?;
    let canteen = CanteenId(f.canteen);
    v.require_canteen(canteen)?;
    let reason = f.reason.trim();
    if reason.is_empty() {
        return Err(PageError::Bad(
            "人工核验原因必填 / a reason is required".into(),
        ));
    }
    let tz = st.config.timezone;
    let rules = st.config.security.ingest;
    let now = st.clock.now();
    let rand: [u8; 10] = rand::random();
    let id = uuid::Builder::from_unix_timestamp_millis(now.timestamp_millis().max(0) as u64, &rand)
        .into_uuid();
    let item = SettlementItem {
        counter_price: None,
        id,
        resident_id: ResidentId(f.resident),
        canteen_id: canteen,
        served_at: now.with_timezone(&tz).fixed_offset(),
        method: Method::Staff,
        match_score: None,
        liveness_score: None,
        delivered: false,
        staff_reason: Some(format!("{reason}（{}）", v.user.name)),
        proxy_carer_id: None,
        signed: None,
    };
    let batch = zhucan_domain::api::SettlementBatch { items: vec![item] };
    ingest::validate(&batch).map_err(|e| PageError::Bad(format!("{}: {}", e.field, e.message)))?;
    let who = ingest::Caller::Staff {
        actor: v.actor(),
        canteen: Some(canteen),
    };
    let res = st
        .db
        .write(move |tx| ingest::ingest(tx, who, &batch.items, &rules, tz, now))
        .await?;
    let r = res
        .results
        .into_iter()
        .next()
        .ok_or_else(|| PageError::Internal("no result".into()))?;
    let en = v.en;
    let msg = match (r.status, r.meal, r.rejection, r.error) {
        (ItemStatus::Accepted, Some(m), _, _) => {
            if en {
                format!(
                    "Checked in by staff: subsidy {}, to pay {}.",
                    yuan(m.subsidy),
                    yuan(m.self_pay)
                )
            } else {
                format!(
                    "人工核验就餐已记录：补助 {}，自付 {}。",
                    yuan(m.subsidy),
                    yuan(m.self_pay)
                )
            }
        }
        (_, _, Some(rej), _) => {
            if en {
                format!("Refused: {}", rej.reason)
            } else {
                format!("未通过：{}", rej.label_zh)
            }
        }
        (_, _, _, Some(e)) => format!("{}: {}", e.code, e.message),
        _ => "?".into(),
    };
    Ok(see_other(&format!(
        "/operator?canteen={}&msg={}",
        canteen.0,
        qs(&msg)
    )))
}
