//! Residents: look-up (administrators; community workers read their own town only), the record
//! with consent history, enrolment status and prepaid top-ups, edits of categories and status
//! (deceased with a date), the printable top-up receipt, the roster CSV import (all rows or
//! none, every bad row shown with its line and reason), and the audited reveal of a full
//! national ID number (administrators). Every change is written to the audit log.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Query, State};
use chrono::NaiveDate;
use serde::Deserialize;
use zhucan_domain::api::ResidentDto;
use zhucan_domain::{Category, Fen, ResidentId, ResidentStatus};

use super::{Chrome, HasCsrf, PageError, PageResult, Posted, Viewer, local_time, see_other, yuan};
use crate::db::dashboard::ResidentHit;
use crate::db::users::Role;
use crate::http::AppState;
use crate::{db, import};

#[derive(Template)]
#[template(path = "residents.html")]
struct ListPage {
    page: Chrome,
    q: String,
    hits: Vec<ResidentHit>,
    balances: Vec<String>,
    admin: bool,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    msg: Option<String>,
}

pub async fn list(State(st): State<AppState>, v: Viewer, Query(q): Query<ListQuery>) -> PageResult {
    v.require(&[Role::Admin, Role::Community])?;
    let search = q.q.unwrap_or_default().trim().to_owned();
    let (s2, town) = (search.clone(), v.town_scope());
    let hits = st
        .db
        .read(move |c| db::dashboard::search_residents(c, &s2, town.as_deref(), 100))
        .await?;
    let mut page = v.chrome("老人档案", "Residents", "/residents");
    page.notice = q.msg.unwrap_or_default();
    super::render(&ListPage {
        balances: hits
            .iter()
            .map(|h| h.prepaid_balance.map_or("—".into(), yuan))
            .collect(),
        hits,
        q: search,
        admin: v.user.role == Role::Admin,
        page,
    })
}

#[derive(Template)]
#[template(path = "resident.html")]
struct ShowPage {
    page: Chrome,
    r: ResidentDto,
    /// Age today: the page never shows the birth date, which would complete the masked number.
    age: u32,
    admin: bool,
    status: String,
    categories: String,
    balance: String,
    consents: Vec<(String, String, String, String)>,
    topups: Vec<(i64, String, String, String, String)>,
}

async fn load(st: &AppState, v: &Viewer, id: i64) -> PageResult<ResidentDto> {
    let r = st
        .db
        .read(move |c| db::residents::get_dto(c, ResidentId(id)))
        .await?;
    if let Some(t) = v.town_scope()
        && r.residence_town != t
    {
        return Err(PageError::Forbidden(
            "不是本镇街居民 / not a resident of your town".into(),
        ));
    }
    Ok(r)
}

pub async fn show(
    State(st): State<AppState>,
    v: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    v.require(&[Role::Admin, Role::Community])?;
    let r = load(&st, &v, id).await?;
    let tz = st.config.timezone;
    let today = st.clock.now().with_timezone(&tz).date_naive();
    let (consents, topups, age) = st
        .db
        .read(move |c| {
            Ok((
                db::dashboard::consent_history(c, ResidentId(id))?,
                db::topups::of_resident(c, ResidentId(id))?,
                db::residents::get(c, ResidentId(id))?.age_on(today),
            ))
        })
        .await?;
    let en = v.en;
    let mut page = v.chrome(&r.name, &r.name, "/residents");
    page.notice = q.msg.unwrap_or_default();
    let status = match (r.deceased_on, en) {
        (Some(d), false) => format!("已身故（{d}）"),
        (Some(d), true) => format!("deceased ({d})"),
        (None, _) => serde_json::to_value(r.status)
            .ok()
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default(),
    };
    super::render(&ShowPage {
        age,
        admin: v.user.role == Role::Admin,
        status,
        categories: r.categories.join(","),
        balance: r.prepaid_balance.map_or("—".into(), yuan),
        consents: consents
            .into_iter()
            .map(|(kind, granted, at, by)| {
                let kind = match (kind.as_str(), en) {
                    ("face_enrolment", false) => "人脸采集".to_owned(),
                    ("template_sharing", false) => "模板共享".to_owned(),
                    (k, _) => k.to_owned(),
                };
                let g = match (granted, en) {
                    (true, false) => "同意",
                    (false, false) => "撤回",
                    (true, true) => "granted",
                    (false, true) => "withdrawn",
                };
                (kind, g.to_owned(), local_time(&at, tz, true), by)
            })
            .collect(),
        topups: topups
            .into_iter()
            .map(|t| {
                (
                    t.id,
                    local_time(&t.at, tz, true),
                    yuan(t.amount),
                    yuan(t.balance_after),
                    t.by,
                )
            })
            .collect(),
        r,
        page,
    })
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    csrf: String,
    categories: String,
    status: String,
    #[serde(default)]
    deceased_on: String,
}

impl HasCsrf for EditForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Changes categories and status (deceased needs a date).
pub async fn edit(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    p: Posted<EditForm>,
) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin])?;
    let mut cats = BTreeSet::new();
    for c in f
        .categories
        .split([',', '，', ' '])
        .filter(|c| !c.is_empty())
    {
        cats.insert(Category::parse(c.trim()).map_err(PageError::Bad)?);
    }
    let status = match f.status.as_str() {
        "active" => ResidentStatus::Active,
        "suspended" => ResidentStatus::Suspended,
        "deceased" => {
            let date: NaiveDate = f.deceased_on.trim().parse().map_err(|_| {
                PageError::Bad("身故需填写日期 YYYY-MM-DD / deceased needs a date".into())
            })?;
            ResidentStatus::Deceased { date }
        }
        _ => return Err(PageError::Bad("status".into())),
    };
    let u = db::residents::Update {
        status: Some(status),
        categories: Some(cats),
        consent: None,
        face_enrolled: None,
    };
    let by = format!("user:{}", v.user.name);
    crate::residents::update(&st.db, &*st.clock, v.actor(), ResidentId(id), u, by).await?;
    Ok(see_other(&format!(
        "/residents/{id}?msg=%E5%B7%B2%E4%BF%9D%E5%AD%98"
    )))
}

/// Parses a yuan amount with at most two decimals ("50", "12.5", "¥12.50") into fen; no negative
/// amounts ([`Fen::parse_yuan`]).
pub fn parse_yuan(s: &str) -> Option<Fen> {
    Fen::parse_yuan(s.trim().trim_start_matches('¥'))
        .ok()
        .filter(|f| !f.is_negative())
}

#[derive(Debug, Deserialize)]
pub struct TopupForm {
    csrf: String,
    amount: String,
}

impl HasCsrf for TopupForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A prepaid top-up: ledger row and balance change in one transaction, then the receipt.
pub async fn topup(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    p: Posted<TopupForm>,
) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin])?;
    let amount = parse_yuan(&f.amount)
        .filter(|a| a.0 > 0 && a.0 <= 1_000_000)
        .ok_or_else(|| {
            PageError::Bad("金额应为 0.01–10000 元 / amount 0.01 to 10000 yuan".into())
        })?;
    let at = zhucan_platform::stamp(st.clock.now());
    let by = format!("user:{}", v.user.name);
    let actor = v.actor();
    let tid = st
        .db
        .write(move |tx| {
            let tid = db::topups::add(tx, ResidentId(id), amount, &at, &by)?;
            db::audit::append(
                tx,
                &at,
                &actor,
                "prepaid.topup",
                &format!("resident:{id}"),
                &serde_json::json!({ "topup": tid, "amount": amount }),
            )?;
            Ok(tid)
        })
        .await?;
    Ok(see_other(&format!("/topups/{tid}/receipt")))
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage {
    page: Chrome,
    t: db::topups::Topup,
    when: String,
    amount: String,
    balance: String,
}

pub async fn receipt(State(st): State<AppState>, v: Viewer, Path(id): Path<i64>) -> PageResult {
    v.require(&[Role::Admin])?;
    let t = st.db.read(move |c| db::topups::get(c, id)).await?;
    super::render(&ReceiptPage {
        page: v.chrome("预存充值收据", "Top-up receipt", "/residents"),
        when: local_time(&t.at, st.config.timezone, true),
        amount: yuan(t.amount),
        balance: yuan(t.balance_after),
        t,
    })
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    page: Chrome,
    errors: Vec<import::RowError>,
    problem: String,
    csv: String,
}

pub async fn import_page(v: Viewer) -> PageResult {
    v.require(&[Role::Admin])?;
    super::render(&ImportPage {
        page: v.chrome("导入老人名册", "Import the roster", "/residents"),
        errors: Vec::new(),
        problem: String::new(),
        csv: String::new(),
    })
}

#[derive(Debug, Deserialize)]
pub struct ImportForm {
    csrf: String,
    csv: String,
}

impl HasCsrf for ImportForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Imports the pasted (or file-picked) roster CSV: all rows or none.
pub async fn import(State(st): State<AppState>, p: Posted<ImportForm>) -> PageResult {
    let Posted { viewer: v, form: f } = p;
    v.require(&[Role::Admin])?;
    let (db, key, now) = (st.db.clone(), st.config.index_key.0.clone(), st.clock.now());
    let text = f.csv.clone();
    let actor = v.actor();
    let out = tokio::task::spawn_blocking(move || {
        import::residents_as(&db, &key, text.as_bytes(), &actor, now)
    })
    .await
    .map_err(|e| PageError::Internal(e.to_string()))?;
    match out {
        Ok(s) => Ok(see_other(&format!(
            "/residents?msg={}",
            super::qs(&format!(
                "已导入 {} 位老人 / imported {}",
                s.imported, s.imported
            ))
        ))),
        Err(import::Error::Rows(errors)) => super::render(&ImportPage {
            page: v.chrome("导入老人名册", "Import the roster", "/residents"),
            problem: format!(
                "{} 行有问题，未导入任何记录 / {} bad row(s); nothing was imported",
                errors.len(),
                errors.len()
            ),
            errors,
            csv: f.csv,
        }),
        Err(import::Error::Read(m)) => Err(PageError::Bad(m)),
        Err(import::Error::Db(e)) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "national_id.html")]
struct NationalIdPage {
    page: Chrome,
    r: ResidentDto,
    number: String,
}

#[derive(Debug, Deserialize)]
pub struct RevealForm {
    csrf: String,
}

impl HasCsrf for RevealForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Shows the full national ID number to an administrator, writing the reveal to the audit log
/// first. A POST (with the CSRF token), so a link or a prefetch cannot reveal it.
pub async fn national_id(
    State(st): State<AppState>,
    Path(id): Path<i64>,
    p: Posted<RevealForm>,
) -> PageResult {
    let Posted { viewer: v, form: _ } = p;
    v.require(&[Role::Admin])?;
    let key = st.config.index_key.0.clone();
    let (r, reveal) = crate::residents::reveal_national_id(
        &st.db,
        &*st.clock,
        key,
        v.actor(),
        ResidentId(id),
        "dashboard",
    )
    .await?
    .ok_or_else(|| {
        db::Error::Conflict(
            "只存有脱敏号码 / only the masked number is on file for this resident".into(),
        )
    })?;
    let number = reveal.national_id;
    let mut resp = super::render(&NationalIdPage {
        page: v.chrome("完整身份证号", "Full national ID number", "/residents"),
        r,
        number,
    })?;
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_amounts_parse_to_fen() {
        assert_eq!(parse_yuan("50"), Some(Fen(5000)));
        assert_eq!(parse_yuan("12.5"), Some(Fen(1250)));
        assert_eq!(parse_yuan("¥0.07"), Some(Fen(7)));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("-3"), None);
        assert_eq!(parse_yuan(""), None);
    }
}
