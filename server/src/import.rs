//! Import of the civil-affairs roster (CSV, UTF-8, BOM allowed, Chinese or English headers).
//!
//! All or nothing: every row is validated first and EVERY bad row is reported with its line
//! number, column and reason; if any row is bad nothing is imported. Otherwise all rows go in
//! within one transaction. (A half-imported roster is harder to fix than a rejected one: the
//! civil-affairs clerk corrects the file and runs the same command again.)
//!
//! Columns (header row required; order free):
//! `姓名,性别,身份证号,户籍,户籍镇街,居住镇街,类别,状态,身故日期,卡号,指定食堂,预存余额`
//! (or `name,sex,national_id,registration,registered_town,residence_town,categories,status,
//! deceased_on,card_code,designated_canteen,prepaid_balance`). `户籍` is 本地/外地; towns are a
//! code (`choucheng`) or a name (`稠城街道`); `类别` lists categories (Chinese labels or codes)
//! separated by `;`, `、` or `|`; `状态` is 正常/暂停/身故 (身故 needs 身故日期); `指定食堂` is a
//! canteen id; `预存余额` is yuan (`120.50`). The last three may be empty.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use zhucan_domain::resident::Consent;
use zhucan_domain::{CanteenId, Category, Fen, NationalId, ResidentStatus, Sex};

use crate::crypto::seal_national_id;
use crate::db::audit::{self, Actor};
use crate::db::{self, Db, residents::NewResidentRow};

/// The canonical header, in Chinese.
pub const HEADER: [&str; 12] = [
    "姓名",
    "性别",
    "身份证号",
    "户籍",
    "户籍镇街",
    "居住镇街",
    "类别",
    "状态",
    "身故日期",
    "卡号",
    "指定食堂",
    "预存余额",
];
const ENGLISH: [&str; 12] = [
    "name",
    "sex",
    "national_id",
    "registration",
    "registered_town",
    "residence_town",
    "categories",
    "status",
    "deceased_on",
    "card_code",
    "designated_canteen",
    "prepaid_balance",
];
/// Columns that may be left out of the header entirely.
const OPTIONAL: [usize; 4] = [8, 9, 10, 11];

/// One problem in the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.reason
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} bad row(s); nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    #[error("reading the file: {0}")]
    Read(String),
    #[error(transparent)]
    Db(#[from] db::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: usize,
}

fn category_code(s: &str) -> Result<Category, String> {
    let code = match s {
        "低保" => Category::DIBAO,
        "低保边缘" => Category::DIBAO_EDGE,
        "特困" => Category::TEKUN,
        "孤寡" => Category::GUGUA,
        "失能" => Category::DISABLED,
        "轻度失能" => "disabled_1",
        "中度失能" => "disabled_2",
        "重度失能" => "disabled_3",
        "重度残疾" => Category::SEVERE_DISABILITY,
        "计生特殊家庭" => Category::SHIDU,
        "优抚对象" => Category::YOUFU,
        other => other,
    };
    Category::parse(code)
}

/// [`residents_as`] from the command line (actor `cli`).
pub fn residents(
    db: &Db,
    key: &[u8],
    input: impl Read,
    now: DateTime<Utc>,
) -> Result<ImportSummary, Error> {
    residents_as(db, key, input, &Actor::system("cli"), now)
}

/// Reads and validates the roster, then imports it in one transaction — or nothing. The import
/// is written to the audit log (by `actor`, with the new residents' ids) in that transaction.
pub fn residents_as(
    db: &Db,
    key: &[u8],
    mut input: impl Read,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<ImportSummary, Error> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|e| Error::Read(format!("{e} (is it UTF-8?)")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| Error::Read(e.to_string()))?
        .clone();
    let mut col: [Option<usize>; 12] = [None; 12];
    let mut errors = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim();
        match HEADER
            .iter()
            .position(|x| *x == h)
            .or_else(|| ENGLISH.iter().position(|x| *x == h))
        {
            Some(k) => col[k] = Some(i),
            None => errors.push(RowError {
                line: 1,
                column: h.to_owned(),
                reason: "unknown column".into(),
            }),
        }
    }
    for (k, c) in col.iter().enumerate() {
        if c.is_none() && !OPTIONAL.contains(&k) {
            errors.push(RowError {
                line: 1,
                column: HEADER[k].into(),
                reason: "missing column".into(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(Error::Rows(errors));
    }

    let (towns, canteens, known_cards) = db.read_sync(|c| {
        let towns: HashMap<String, String> = db::towns::list(c)?
            .into_iter()
            .flat_map(|t| [(t.code.clone(), t.code.clone()), (t.name, t.code)])
            .collect();
        let canteens: HashSet<i64> = db::canteens::all(c)?.into_iter().map(|c| c.id.0).collect();
        let cards: HashSet<String> = db::residents::card_codes(c)?;
        Ok((towns, canteens, cards))
    })?;

    let mut rows: Vec<(u64, NewResidentRow)> = Vec::new();
    let mut seen_ids: HashMap<String, u64> = HashMap::new();
    let mut seen_cards: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    column: String::new(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let get = |k: usize| {
            col[k]
                .and_then(|i| rec.get(i))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let mut bad = |k: usize, reason: String| {
            errors.push(RowError {
                line,
                column: HEADER[k].into(),
                reason,
            });
        };
        let name = get(0);
        if name.is_empty() || name.chars().count() > 32 {
            bad(0, "must be 1 to 32 characters".into());
        }
        let nid = match NationalId::parse(&get(2)) {
            Ok(n) => Some(n),
            Err(m) => {
                bad(2, m);
                None
            }
        };
        let sex = match get(1).as_str() {
            "男" | "male" | "M" => Some(Sex::Male),
            "女" | "female" | "F" => Some(Sex::Female),
            other => {
                bad(1, format!("'{other}' is not 男 or 女"));
                None
            }
        };
        if let (Some(n), Some(s)) = (&nid, sex)
            && n.sex() != s
        {
            bad(1, "does not match the national ID number".into());
        }
        let local = match get(3).as_str() {
            "本地" | "是" | "local" | "yes" => Some(true),
            "外地" | "否" | "nonlocal" | "no" => Some(false),
            other => {
                bad(3, format!("'{other}' is not 本地 or 外地"));
                None
            }
        };
        let mut town = |k: usize| match towns.get(get(k).as_str()) {
            Some(code) => Some(code.clone()),
            None => {
                errors.push(RowError {
                    line,
                    column: HEADER[k].into(),
                    reason: format!("no town '{}'", get(k)),
                });
                None
            }
        };
        let registered = town(4);
        let residence = town(5);
        let mut bad = |k: usize, reason: String| {
            errors.push(RowError {
                line,
                column: HEADER[k].into(),
                reason,
            });
        };
        let mut cats = BTreeSet::new();
        for part in get(6)
            .split([';', '；', '、', '|', ','])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match category_code(part) {
                Ok(c) => {
                    cats.insert(c);
                }
                Err(m) => bad(6, m),
            }
        }
        let deceased_on = get(8);
        let status = match get(7).as_str() {
            "" | "正常" | "active" => Some(ResidentStatus::Active),
            "暂停" | "suspended" => Some(ResidentStatus::Suspended),
            "身故" | "死亡" | "deceased" => match deceased_on.parse::<NaiveDate>() {
                Ok(date) => Some(ResidentStatus::Deceased { date }),
                Err(_) => {
                    bad(8, "身故 needs a date YYYY-MM-DD".into());
                    None
                }
            },
            other => {
                bad(7, format!("'{other}' is not 正常, 暂停 or 身故"));
                None
            }
        };
        let card = get(9);
        if card.is_empty() || card.chars().count() > 32 {
            bad(9, "must be 1 to 32 characters".into());
        } else if known_cards.contains(&card) {
            bad(9, format!("card '{card}' already belongs to a resident"));
        } else if let Some(first) = seen_cards.insert(card.clone(), line) {
            bad(9, format!("card '{card}' also on line {first}"));
        }
        let designated = match get(10).as_str() {
            "" => None,
            s => match s.parse::<i64>() {
                Ok(id) if canteens.contains(&id) => Some(CanteenId(id)),
                _ => {
                    bad(10, format!("no canteen '{s}'"));
                    None
                }
            },
        };
        let balance = match get(11).as_str() {
            "" => None,
            s => match Fen::parse_yuan(s) {
                Ok(f) if !f.is_negative() => Some(f),
                Ok(_) => {
                    bad(11, "must not be negative".into());
                    None
                }
                Err(m) => {
                    bad(11, m);
                    None
                }
            },
        };
        let Some(nid) = nid else { continue };
        let (index, nonce, ciphertext) =
            seal_national_id(key, &nid).map_err(|e| Error::Read(e.to_string()))?;
        if let Some(first) = seen_ids.insert(index.clone(), line) {
            bad(2, format!("the same number is also on line {first}"));
            continue;
        }
        if db
            .read_sync(|c| db::residents::find_by_index(c, &index))?
            .is_some()
        {
            bad(2, "already on file".into());
            continue;
        }
        let (Some(_), Some(local), Some(registered), Some(residence), Some(status)) =
            (sex, local, registered, residence, status)
        else {
            continue;
        };
        let Some(birth_date) = nid.birth_date() else {
            continue;
        };
        rows.push((
            line,
            NewResidentRow {
                name,
                sex: nid.sex(),
                birth_date,
                national_id_index: index,
                national_id_sealed: Some(db::Sealed { nonce, ciphertext }),
                local_registration: local,
                registered_town: registered,
                residence_town: residence,
                categories: cats,
                status,
                card_code: card,
                designated_canteen: designated,
                prepaid_balance: balance,
                consent: Consent::default(),
                face_enrolled: false,
            },
        ));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(Error::Rows(errors));
    }
    let at = zhucan_platform::stamp(now);
    let imported = db.write_blocking(|tx| {
        let mut ids = Vec::with_capacity(rows.len());
        for (_, r) in &rows {
            ids.push(db::residents::insert(tx, r, &at, "import")?.0);
        }
        audit::append(
            tx,
            &at,
            actor,
            "resident.import",
            "residents",
            &serde_json::json!({ "imported": ids.len(), "residents": ids }),
        )?;
        Ok(rows.len())
    })?;
    Ok(ImportSummary { imported })
}
