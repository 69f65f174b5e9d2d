//! Finance: the month's statement by canteen, town and funding source with drill-down to
//! residents and meals, each kiosk's signed chain (✔ verified or ✘ with its problems), the
//! flagged lines, month close, exports (the API's CSV and XLSX), a print view (print CSS) and a
//! chart of meals per day per canteen (inline SVG).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use zhucan_domain::api::{Amounts, ChainLine};
use zhucan_domain::{CanteenId, FundingSource, ResidentId};

use super::{
    Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, local_time, method_label, qs,
    see_other, slot_label, today, yuan,
};
use crate::db::statements::Filter;
use crate::db::users::Role;
use crate::http::AppState;
use crate::period::parse_month;
use crate::{db, reports};

/// A statement line, display-ready.
pub struct Line {
    pub href: String,
    pub name: String,
    pub sub: String,
    pub meals: i64,
    pub subsidised: i64,
    pub price: String,
    pub subsidy: String,
    pub self_pay: String,
    pub city: String,
    pub town: String,
    pub other: String,
    pub county: String,
    /// The canteens' own discount (食堂让利).
    pub own: String,
    pub delivery_fee: String,
    pub delivery_subsidy: String,
    pub operating: String,
    /// Of `meals`, those a registered carer collected (代取).
    pub proxy: i64,
}

fn line(href: String, name: String, sub: String, a: &Amounts) -> Line {
    Line {
        href,
        name,
        sub,
        meals: a.meals,
        subsidised: a.subsidised_meals,
        price: yuan(a.price),
        subsidy: yuan(a.subsidy),
        self_pay: yuan(a.self_pay),
        city: yuan(a.city),
        town: yuan(a.town),
        other: yuan(a.other),
        county: yuan(a.county),
        own: yuan(a.canteen),
        delivery_fee: yuan(a.delivery_fee),
        delivery_subsidy: yuan(a.delivery_subsidy),
        operating: yuan(a.operating),
        proxy: 0,
    }
}

/// An operating-subsidy line of the statement page: canteen, funder, meals, amount.
pub struct Operating {
    pub canteen: String,
    pub source: String,
    pub meals: i64,
    pub fen: String,
}

/// A 人户分离 clearing line: paying town, serving town, meals, subsidy, the town share.
pub struct Clearing {
    pub paying: String,
    pub serving: String,
    pub meals: i64,
    pub subsidy: String,
    pub town: String,
}

/// A kiosk's chain on the statement page.
pub struct Chain {
    pub kiosk: String,
    pub canteen: String,
    pub meals: i64,
    pub staff_meals: i64,
    pub seqs: String,
    /// `verified`, `broken` or `unsigned`.
    pub status: String,
    pub label: String,
    pub problems: Vec<String>,
}

fn chain_row(l: &ChainLine, names: &BTreeMap<i64, String>, en: bool) -> Chain {
    let label = match (l.status.as_str(), en) {
        ("verified", false) => "✔ 已验证",
        ("verified", true) => "✔ verified",
        ("broken", false) => "✘ 链有缺口或分叉",
        ("broken", true) => "✘ gaps or forks",
        ("flagged", false) => "⚠ 链完整，有低于终端阈值的人脸记录待核查",
        ("flagged", true) => "⚠ whole, with face meals below the kiosk's threshold to check",
        (_, false) => "未签名（服务器录入）",
        (_, true) => "unsigned (entered on the server)",
    };
    Chain {
        kiosk: match l.kiosk_id {
            Some(id) => format!("{} (#{id})", l.kiosk_name),
            None if en => "entered on the server".into(),
            None => "服务器录入".into(),
        },
        canteen: l
            .canteen_id
            .and_then(|c| names.get(&c.0).cloned())
            .unwrap_or_default(),
        meals: l.meals,
        staff_meals: l.staff_meals,
        seqs: match (l.first_seq, l.last_seq) {
            (Some(a), Some(b)) => format!("{a}–{b}"),
            _ => "—".into(),
        },
        status: l.status.clone(),
        label: label.into(),
        problems: chain_problems(l, en),
    }
}

/// A chain line's problems as shown: the kind in the page's language, then the detail
/// (bilingual already), e.g. `缺口：第3至5条记录未收到 / records 3..=5 never arrived`.
pub fn chain_problems(l: &ChainLine, en: bool) -> Vec<String> {
    let kind = |k: &str| match (k, en) {
        ("gap", false) => "缺口",
        ("gap", true) => "gap",
        ("fork", false) => "分叉",
        ("fork", true) => "fork",
        ("bad_signature", false) => "签名无效",
        ("bad_signature", true) => "bad signature",
        (_, false) => "篡改",
        (_, true) => "tampered",
    };
    l.problems
        .iter()
        .map(|p| format!("{}：{}", kind(&p.kind), p.detail))
        .collect()
}

/// A flagged settlement.
pub struct Flag {
    pub kind: String,
    pub when: String,
    pub canteen: String,
    pub resident: String,
    pub href: String,
    pub method: String,
    pub detail: String,
    pub amount: String,
}

/// One canteen's line on the chart.
pub struct Series {
    pub name: String,
    pub color: String,
    pub points: String,
    pub total: i64,
}

/// Meals per day per canteen, as SVG geometry.
pub struct Chart {
    pub width: i64,
    pub height: i64,
    pub series: Vec<Series>,
    /// (x, label) of the day ticks.
    pub xticks: Vec<(i64, String)>,
    /// (y, label) of the count ticks.
    pub yticks: Vec<(i64, String)>,
    pub left: i64,
    pub bottom: i64,
}

const COLORS: [&str; 10] = [
    "#0b6bcb", "#c62828", "#1a7f37", "#b35900", "#6a1b9a", "#00838f", "#ad1457", "#5d4037",
    "#455a64", "#827717",
];

fn days_in(y: i32, m: u32) -> u32 {
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(31, |d| d.day())
}

fn chart(month: &str, counts: &[(i64, String, i64)], names: &BTreeMap<i64, String>) -> Chart {
    let (y, m) = parse_month(month).unwrap_or((2000, 1));
    let days = i64::from(days_in(y, m));
    let (width, height, left, bottom, top) = (900i64, 240i64, 40i64, 22i64, 8i64);
    let max = counts.iter().map(|c| c.2).max().unwrap_or(0).max(1);
    // a round top for the axis
    let step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
        .into_iter()
        .find(|s| max / s <= 5)
        .unwrap_or(10_000);
    let top_val = ((max + step - 1) / step) * step;
    let plot_w = width - left - 10;
    let plot_h = height - bottom - top;
    let x = |d: i64| left + (d - 1) * plot_w / (days - 1).max(1);
    let yv = |v: i64| top + plot_h - v * plot_h / top_val;
    let mut by: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    for (c, date, n) in counts {
        let day: i64 = date.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
        by.entry(*c).or_default().push((day, *n));
    }
    let series = by
        .into_iter()
        .enumerate()
        .map(|(i, (c, pts))| Series {
            name: names.get(&c).cloned().unwrap_or_else(|| format!("#{c}")),
            color: COLORS[i % COLORS.len()].to_owned(),
            total: pts.iter().map(|p| p.1).sum(),
            points: pts
                .iter()
                .map(|(d, n)| format!("{},{}", x(*d), yv(*n)))
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect();
    Chart {
        width,
        height,
        series,
        xticks: (1..=days)
            .filter(|d| *d == 1 || d % 5 == 0)
            .map(|d| (x(d), d.to_string()))
            .collect(),
        yticks: (0..=top_val / step)
            .map(|i| (yv(i * step), (i * step).to_string()))
            .collect(),
        left,
        bottom: height - bottom,
    }
}

#[derive(Template)]
#[template(path = "finance.html")]
struct FinancePage {
    page: Chrome,
    month: String,
    closed: bool,
    can_close: bool,
    total: Line,
    canteens: Vec<Line>,
    towns: Vec<Line>,
    funding: Vec<(String, String)>,
    funding_total: String,
    operating: Vec<Operating>,
    operating_total: String,
    operating_payable: String,
    clearing: Vec<Clearing>,
    chains: Vec<Chain>,
    adjustments: usize,
    adjustments_total: String,
    /// Subsidy withheld on confirmed red flags, what the month pays, and flags not reviewed.
    withheld: String,
    payable: String,
    open_flags: usize,
    flag_counts: (i64, i64, i64, i64),
    /// Counted meals that reached the server late, and their subsidy.
    late: (usize, String),
    /// The books check: verified?, its summary, the rows it names.
    books: (bool, String, String),
    heads: String,
    /// The check of heads the user pasted: (all present?, one line per head).
    heads_check: Option<(bool, Vec<String>)>,
    heads_asked: String,
    flags: Vec<Flag>,
    chart: Chart,
    csv: String,
    xlsx: String,
}

#[derive(Debug, Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
    canteen: Option<i64>,
    msg: Option<String>,
    /// Heads from an earlier statement, to check (`zhucan-heads:v1;…`).
    heads: Option<String>,
}

/// The month a page asks for (`YYYY-MM`), or the current one on the server's clock.
pub(super) fn month_of(q: Option<&str>, st: &AppState) -> PageResult<String> {
    match q {
        Some(m) if !m.is_empty() => {
            if parse_month(m).is_none() {
                return Err(PageError::Bad("month must be YYYY-MM".into()));
            }
            Ok(m.to_owned())
        }
        _ => Ok(today(st.clock.now(), st.config.timezone)
            .format("%Y-%m")
            .to_string()),
    }
}

fn flag_label(kind: &str, en: bool) -> &'static str {
    match (kind, en) {
        ("not_eligible", false) => "全价（不符合补助）",
        ("not_eligible", true) => "full price (not eligible)",
        ("duplicate", false) => "重复就餐已拒绝",
        ("duplicate", true) => "duplicate refused",
        ("voided", false) => "已作废",
        ("voided", true) => "voided",
        ("staff", false) => "人工核验",
        ("staff", true) => "staff override",
        _ => "?",
    }
}

pub async fn show(
    State(st): State<AppState>,
    v: Viewer,
    Query(q): Query<MonthQuery>,
) -> PageResult {
    v.require(&[Role::Admin, Role::Finance])?;
    let month = month_of(q.month.as_deref(), &st)?;
    let m2 = month.clone();
    let asked = q.heads.clone().unwrap_or_default();
    let earlier = match asked.trim() {
        "" => None,
        t => Some(
            zhucan_domain::api::Heads::parse(t)
                .map_err(|why| PageError::Bad(format!("heads: {why}")))?,
        ),
    };
    let rules = st.config.security.flags;
    let (statement, towns, counts, flag_counts, flags, canteens, heads_check, open_flags) = st
        .db
        .read(move |c| {
            let open = crate::flags::compute(c, &m2, None, &rules)?
                .iter()
                .filter(|f| f.review.is_none())
                .count();
            let hc = earlier.map(|h| db::books::check_heads(c, &h)).transpose()?;
            let s = reports::statement(c, &m2, &Filter::default())?;
            let towns = db::towns::list(c)?;
            // the county share is paid by a district
            let districts = db::towns::list_districts(c)?;
            let counts = db::dashboard::daily_counts(c, &m2)?;
            let fc = db::dashboard::flag_counts(c, &m2, None)?;
            let flags = db::dashboard::flags(c, &m2, None, 30)?;
            let canteens = db::canteens::all(c)?;
            Ok((s, (towns, districts), counts, fc, flags, canteens, hc, open))
        })
        .await?;
    let en = v.en;
    let tz = st.config.timezone;
    let (towns, districts) = towns;
    let town_names: BTreeMap<String, String> =
        towns.into_iter().map(|t| (t.code, t.name)).collect();
    let district_names: BTreeMap<String, String> =
        districts.into_iter().map(|d| (d.code, d.name)).collect();
    let dn = |code: &str| {
        district_names
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_owned())
    };
    let tn = |code: &str| {
        town_names
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_owned())
    };
    let mut by_town: BTreeMap<String, Amounts> = BTreeMap::new();
    for l in &statement.canteens {
        by_town
            .entry(l.town_code.clone())
            .or_default()
            .add(&l.amounts);
    }
    let names: BTreeMap<i64, String> = canteens.iter().map(|c| (c.id.0, c.name.clone())).collect();
    let funding = statement
        .funding
        .iter()
        .map(|f| {
            let label = match (f.source.as_str(), en) {
                ("city", true) => "city budget".to_owned(),
                ("other", true) => "other funds".to_owned(),
                ("canteen", true) => "canteens' own discount".to_owned(),
                ("county", true) => match f.town.as_deref() {
                    Some(d) => format!("county/district: {}", dn(d)),
                    None => "county/district budget".to_owned(),
                },
                ("county", false) => match f.town.as_deref() {
                    Some(d) => format!("{}（{}）", f.source_zh, dn(d)),
                    None => f.source_zh.clone(),
                },
                ("town", true) => format!("town: {}", tn(f.town.as_deref().unwrap_or(""))),
                ("town", false) => {
                    format!("{}（{}）", f.source_zh, tn(f.town.as_deref().unwrap_or("")))
                }
                _ => f.source_zh.clone(),
            };
            (label, yuan(f.fen))
        })
        .collect();
    let flags = flags
        .into_iter()
        .map(|(kind, m)| Flag {
            kind: flag_label(&kind, en).to_owned(),
            when: local_time(&m.served_at, tz, true),
            canteen: m.canteen_name.clone(),
            resident: m.resident_name.clone(),
            href: format!(
                "/finance/residents/{}?month={}",
                m.resident_id.0,
                qs(&month)
            ),
            method: method_label(&m.method, en).to_owned(),
            detail: m
                .void_reason
                .clone()
                .or(m.staff_reason.clone())
                .or(m.eligibility.clone().filter(|e| e != "subsidised"))
                .or(m.rejection.clone())
                .unwrap_or_default(),
            amount: yuan(m.price),
        })
        .collect();
    let mut page = v.chrome("月度结算", "Monthly statement", "/finance");
    page.notice = q.msg.unwrap_or_default();
    let mq = qs(&month);
    super::render(&FinancePage {
        closed: statement.closed,
        can_close: !statement.closed,
        total: Line {
            proxy: statement.proxy_meals,
            ..line(
                String::new(),
                String::new(),
                String::new(),
                &statement.total,
            )
        },
        canteens: statement
            .canteens
            .iter()
            .map(|l| Line {
                proxy: l.proxy_meals,
                ..line(
                    format!("/finance/canteens/{}?month={mq}", l.canteen_id.0),
                    l.name.clone(),
                    tn(&l.town_code),
                    &l.amounts,
                )
            })
            .collect(),
        towns: by_town
            .iter()
            .map(|(t, a)| line(String::new(), tn(t), String::new(), a))
            .collect(),
        funding,
        funding_total: yuan(statement.funding_total),
        operating: statement
            .operating
            .iter()
            .map(|o| Operating {
                canteen: names.get(&o.canteen_id.0).cloned().unwrap_or_default(),
                source: match FundingSource::parse(&o.source) {
                    Some(s) if !en => s.label_zh().to_owned(),
                    _ => o.source.clone(),
                },
                meals: o.meals,
                fen: yuan(o.fen),
            })
            .collect(),
        operating_total: yuan(statement.operating_total),
        operating_payable: yuan(statement.operating_payable),
        clearing: statement
            .clearing
            .iter()
            .map(|c| Clearing {
                paying: tn(&c.paying_town),
                serving: tn(&c.serving_town),
                meals: c.meals,
                subsidy: yuan(c.subsidy),
                town: yuan(c.town),
            })
            .collect(),
        chains: statement
            .chains
            .iter()
            .map(|l| chain_row(l, &names, en))
            .collect(),
        adjustments: statement.adjustments.len(),
        adjustments_total: yuan(statement.adjustments_total.subsidy),
        withheld: yuan(statement.withheld_total),
        payable: yuan(statement.payable),
        open_flags,
        flag_counts,
        late: (
            statement.late.len(),
            yuan(statement.late.iter().map(|l| l.subsidy).sum()),
        ),
        books: (
            statement.books.verified(),
            reports::books_status_zh(&statement.books),
            reports::books_note(&statement.books),
        ),
        heads: statement.heads.token.clone(),
        heads_check: heads_check.map(|h| {
            let lines = std::iter::once(&h.audit)
                .chain(&h.kiosks)
                .map(|v| {
                    let what = match v.kiosk_id {
                        Some(k) => format!("{} {k}", if en { "kiosk" } else { "终端" }),
                        None => (if en { "audit log" } else { "审计日志" }).to_owned(),
                    };
                    let verdict = if en { &v.verdict } else { &v.verdict_zh };
                    format!("{what} #{}: {verdict}", v.seq)
                })
                .collect();
            (h.ok, lines)
        }),
        heads_asked: asked,
        flags,
        chart: chart(&month, &counts, &names),
        csv: format!("/api/v1/statements?month={mq}&format=csv"),
        xlsx: format!("/api/v1/statements?month={mq}&format=xlsx"),
        month,
        page,
    })
}

#[derive(Template)]
#[template(path = "finance_canteen.html")]
struct CanteenPage {
    page: Chrome,
    month: String,
    name: String,
    total: Line,
    residents: Vec<Line>,
    back: String,
}

/// Drill-down: one canteen's month, by resident.
pub async fn canteen(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<MonthQuery>,
) -> PageResult {
    v.require(&[Role::Admin, Role::Finance])?;
    let month = month_of(q.month.as_deref(), &st)?;
    let m2 = month.clone();
    let (s, c) = st
        .db
        .read(move |c| {
            let canteen = db::canteens::get(c, CanteenId(id))?;
            let f = Filter {
                canteen: Some(CanteenId(id)),
                town: None,
            };
            Ok((reports::statement(c, &m2, &f)?, canteen))
        })
        .await?;
    let mq = qs(&month);
    super::render(&CanteenPage {
        page: v.chrome(
            &format!("{} · {month}", c.name),
            &format!("{} · {month}", c.name),
            "/finance",
        ),
        name: c.name.clone(),
        total: line(String::new(), String::new(), String::new(), &s.total),
        residents: s
            .residents
            .iter()
            .map(|r| {
                line(
                    format!(
                        "/finance/residents/{}?month={mq}&canteen={id}",
                        r.resident_id.0
                    ),
                    r.name.clone(),
                    r.national_id_masked.clone(),
                    &r.amounts,
                )
            })
            .collect(),
        back: format!("/finance?month={mq}"),
        month,
    })
}

/// A meal on the resident drill-down.
pub struct MealLine {
    pub when: String,
    pub slot: String,
    pub canteen: String,
    pub method: String,
    pub score: String,
    pub price: String,
    pub subsidy: String,
    pub self_pay: String,
    pub status: String,
    pub struck: bool,
}

#[derive(Template)]
#[template(path = "finance_resident.html")]
struct ResidentPage {
    page: Chrome,
    name: String,
    masked: String,
    meals: Vec<MealLine>,
    back: String,
}

/// Drill-down: one resident's meals in the month.
pub async fn resident(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<MonthQuery>,
) -> PageResult {
    v.require(&[Role::Admin, Role::Finance])?;
    let month = month_of(q.month.as_deref(), &st)?;
    let (m2, canteen) = (month.clone(), q.canteen.map(CanteenId));
    let (r, meals) = st
        .db
        .read(move |c| {
            let r = db::residents::get_dto(c, ResidentId(id))?;
            Ok((
                r,
                db::dashboard::resident_meals(c, ResidentId(id), &m2, canteen)?,
            ))
        })
        .await?;
    let en = v.en;
    let tz = st.config.timezone;
    let title = format!("{} · {month}", r.name);
    super::render(&ResidentPage {
        page: v.chrome(&title, &title, "/finance"),
        name: r.name.clone(),
        masked: r.national_id_masked.clone(),
        meals: meals
            .iter()
            .map(|m| MealLine {
                when: local_time(&m.served_at, tz, true),
                slot: slot_label(m.slot.as_deref(), en).to_owned(),
                canteen: m.canteen_name.clone(),
                method: method_label(&m.method, en).to_owned(),
                score: m.match_score.map_or("—".into(), |s| format!("{s:.2}")),
                price: yuan(m.price),
                subsidy: yuan(m.subsidy),
                self_pay: yuan(m.self_pay),
                struck: m.voided || m.outcome == "rejected",
                status: if m.voided {
                    format!(
                        "{} {}",
                        if en { "voided" } else { "已作废" },
                        m.void_reason.clone().unwrap_or_default()
                    )
                } else if m.outcome == "rejected" {
                    format!(
                        "{} {}",
                        if en { "refused" } else { "拒绝" },
                        m.rejection.clone().unwrap_or_default()
                    )
                } else {
                    m.eligibility.clone().unwrap_or_default()
                },
            })
            .collect(),
        back: format!("/finance?month={}", qs(&month)),
    })
}

#[derive(Debug, Deserialize)]
pub struct CloseForm {
    csrf: String,
    month: String,
    /// Why the month closes with red flags nobody reviewed (needed only then).
    #[serde(default)]
    open_flags_reason: Option<String>,
}

impl HasCsrf for CloseForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Closes a month: from then on its meals are frozen (no void button; corrections become
/// adjustment lines in the next open month).
pub async fn close(State(st): State<AppState>, p: Posted<CloseForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin, Role::Finance])?;
    if parse_month(&f.month).is_none() {
        return Err(PageError::Bad("month must be YYYY-MM".into()));
    }
    let at = zhucan_platform::stamp(st.clock.now());
    let by = format!("user:{}", v.user.name);
    let m = f.month.clone();
    let actor = v.actor();
    let rules = st.config.security.flags;
    let reason = f.open_flags_reason.clone();
    st.db
        .write(move |tx| {
            crate::corrections::close_month(tx, &m, &at, &by, &actor, reason.as_deref(), &rules)
        })
        .await?;
    let msg = if v.en {
        "Month closed."
    } else {
        "已结账。"
    };
    Ok(see_other(&format!(
        "/finance?month={}&msg={}",
        qs(&f.month),
        qs(msg)
    )))
}
