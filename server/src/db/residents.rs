//! Residents, their categories and consent history. The national ID number is stored as a keyed
//! blind index (for look-up) and, sealed with XChaCha20-Poly1305 under a key that never enters
//! the database, the full number (for its masked form and an audited reveal). No digit of it is
//! in clear: characters 7-14 are the birth date, which the database must hold for decisions, and
//! the first six are the county, which the towns give away; any further digit in a backup would
//! let whoever holds it complete the number.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use zhucan_domain::api::{ConsentDto, ResidentDto, StatusDto};
use zhucan_domain::resident::Consent;
use zhucan_domain::{
    CanteenId, Category, Fen, Resident, ResidentId, ResidentStatus, Sex, TownCode,
};

use super::Sealed;
use super::changes::{self, Kind, Subject};
use super::sql::{Conn, OptionalExtension, params};
use super::{Error, Result, Tx, flag};

/// A resident ready to be stored: validated, with the national ID already reduced to its blind
/// index and sealed form.
#[derive(Debug, Clone)]
pub struct NewResidentRow {
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub national_id_index: String,
    /// The full number, sealed (`crate::crypto::seal_national_id`); `None` keeps only the index
    /// (fixtures with made-up indexes; their masked form reads as stars).
    pub national_id_sealed: Option<Sealed>,
    pub local_registration: bool,
    pub registered_town: String,
    pub residence_town: String,
    pub categories: BTreeSet<Category>,
    pub status: ResidentStatus,
    pub card_code: String,
    pub designated_canteen: Option<CanteenId>,
    pub prepaid_balance: Option<Fen>,
    pub consent: Consent,
    pub face_enrolled: bool,
}

fn sex_str(s: Sex) -> &'static str {
    match s {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

fn status_cols(s: ResidentStatus) -> (&'static str, Option<String>) {
    match s {
        ResidentStatus::Active => ("active", None),
        ResidentStatus::Suspended => ("suspended", None),
        ResidentStatus::Deceased { date } => ("deceased", Some(date.to_string())),
    }
}

/// Inserts a resident with their categories and initial consent records; returns the id.
/// A national ID or card code already on file is a conflict naming the field.
pub fn insert(tx: &Tx<'_>, r: &NewResidentRow, at: &str, by: &str) -> Result<ResidentId> {
    let dup: Option<String> = tx
        .query_row(
            "SELECT CASE WHEN national_id_index = ?1 THEN 'national_id' ELSE 'card_code' END
             FROM residents WHERE national_id_index = ?1 OR card_code = ?2
             UNION ALL SELECT 'card_code' FROM carers WHERE card_code = ?2 LIMIT 1",
            params![r.national_id_index, r.card_code],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(field) = dup {
        return Err(Error::Invalid {
            field,
            reason: "already on file for another resident".into(),
        });
    }
    let (status, deceased_on) = status_cols(r.status);
    let id: i64 = tx
        .query_row(
            "INSERT INTO residents (name, sex, birth_date, national_id_index, national_id_masked,
                local_registration, registered_town, residence_town, status, deceased_on,
                card_code, designated_canteen, prepaid_balance, consent_face, consent_sharing,
                face_enrolled, created_at, national_id_nonce, national_id_sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19)
             RETURNING id",
            params![
                r.name,
                sex_str(r.sex),
                r.birth_date.to_string(),
                r.national_id_index,
                "",
                r.local_registration,
                r.registered_town,
                r.residence_town,
                status,
                deceased_on,
                r.card_code,
                r.designated_canteen.map(|c| c.0),
                r.prepaid_balance.map(|f| f.0),
                r.consent.face_enrolment,
                r.consent.template_sharing,
                r.face_enrolled,
                at,
                r.national_id_sealed.as_ref().map(|s| &s.nonce),
                r.national_id_sealed.as_ref().map(|s| &s.ciphertext)
            ],
            |row| row.get(0),
        )
        .map_err(|e| match e {
            Error::Conflict(m) if super::foreign_key(&m) => Error::invalid(
                "registered_town/residence_town/designated_canteen",
                "names a town or canteen that does not exist",
            ),
            other => other,
        })?;
    changes::record(tx, Kind::Resident, Subject::Id(id), at)?;
    set_categories(tx, ResidentId(id), &r.categories)?;
    if r.consent.face_enrolment {
        record_consent(tx, ResidentId(id), "face_enrolment", true, at, by)?;
    }
    if r.consent.template_sharing {
        record_consent(tx, ResidentId(id), "template_sharing", true, at, by)?;
    }
    Ok(ResidentId(id))
}

fn set_categories(tx: &Tx<'_>, id: ResidentId, cats: &BTreeSet<Category>) -> Result<()> {
    tx.execute(
        "DELETE FROM resident_categories WHERE resident_id = ?1",
        [id.0],
    )?;
    for c in cats {
        tx.execute(
            "INSERT INTO resident_categories (resident_id, category) VALUES (?1, ?2)",
            params![id.0, c.0],
        )?;
    }
    Ok(())
}

fn record_consent(
    tx: &Tx<'_>,
    id: ResidentId,
    kind: &str,
    granted: bool,
    at: &str,
    by: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO consent_records (resident_id, kind, granted, at, by) VALUES (?1,?2,?3,?4,?5)",
        params![id.0, kind, granted, at, by],
    )?;
    Ok(())
}

/// Whether the resident withdrew face-enrolment consent on the server: the latest consent record
/// is a refusal that follows a grant. (A kiosk records only grants, with its enrolment.)
pub fn face_consent_withdrawn(conn: &Conn<'_>, id: ResidentId) -> Result<bool> {
    conn.query_row(
        "SELECT CASE WHEN
               (SELECT granted FROM consent_records WHERE resident_id = ?1 AND kind = 'face_enrolment'
                ORDER BY id DESC LIMIT 1) = 0
               AND EXISTS (SELECT 1 FROM consent_records
                           WHERE resident_id = ?1 AND kind = 'face_enrolment' AND granted = 1)
             THEN 1 ELSE 0 END",
        [id.0],
        |r| r.get(0),
    )
}

/// What may change on a resident after creation.
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub status: Option<ResidentStatus>,
    pub categories: Option<BTreeSet<Category>>,
    pub consent: Option<Consent>,
    pub face_enrolled: Option<bool>,
}

/// What [`update`] changed, for the audit entry the caller writes in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Updated {
    /// Consent before and after (equal when unchanged).
    pub consent_before: Consent,
    pub consent_after: Consent,
    /// Templates deleted because consent to face enrolment was withdrawn or the resident died.
    pub purged_templates: i64,
    /// Why they were deleted, when they were.
    pub purge_reason: Option<&'static str>,
}

impl Updated {
    pub fn consent_changed(&self) -> bool {
        self.consent_before != self.consent_after
    }
}

/// Applies `u`, recording consent history and a roster change. Withdrawing consent to face
/// enrolment, or death, purges the resident's templates in the same transaction (and records the
/// purge in `face_data_purges`); any change to consent or death is also a template change, so
/// every kiosk re-checks what it may hold.
pub fn update(tx: &Tx<'_>, id: ResidentId, u: &Update, at: &str, by: &str) -> Result<Updated> {
    let current = get(tx, id)?;
    let mut out = Updated {
        consent_before: current.consent,
        consent_after: current.consent,
        ..Updated::default()
    };
    let mut templates_changed = false;
    let mut purge = None;
    if let Some(s) = u.status {
        let (status, deceased_on) = status_cols(s);
        tx.execute(
            "UPDATE residents SET status = ?2, deceased_on = ?3 WHERE id = ?1",
            params![id.0, status, deceased_on],
        )?;
        if matches!(s, ResidentStatus::Deceased { .. }) {
            purge = Some("death");
        }
        if s != current.status {
            templates_changed = true;
        }
    }
    if let Some(c) = &u.categories {
        set_categories(tx, id, c)?;
    }
    if let Some(c) = u.consent {
        if c.face_enrolment != current.consent.face_enrolment {
            record_consent(tx, id, "face_enrolment", c.face_enrolment, at, by)?;
            templates_changed = true;
        }
        if c.template_sharing != current.consent.template_sharing {
            record_consent(tx, id, "template_sharing", c.template_sharing, at, by)?;
            templates_changed = true;
        }
        tx.execute(
            "UPDATE residents SET consent_face = ?2, consent_sharing = ?3 WHERE id = ?1",
            params![id.0, c.face_enrolment, c.template_sharing],
        )?;
        out.consent_after = c;
        if !c.face_enrolment && purge.is_none() {
            purge = Some("withdrawal");
        }
    }
    if let Some(f) = u.face_enrolled {
        tx.execute(
            "UPDATE residents SET face_enrolled = ?2 WHERE id = ?1",
            params![id.0, f],
        )?;
    }
    if let Some(reason) = purge {
        let n = super::templates::purge_face_data(tx, id, reason, at, by)?;
        if n > 0 {
            out.purged_templates = n;
            out.purge_reason = Some(reason);
        }
    }
    changes::record(tx, Kind::Resident, Subject::Id(id.0), at)?;
    if templates_changed {
        changes::record(tx, Kind::Templates, Subject::Id(id.0), at)?;
    }
    Ok(out)
}

/// Seals the numbers of rows written before national ID numbers were sealed (their masked form
/// and birth date give the number back, which is also why neither may stay), and clears every
/// clear masked form. Run by [`super::Db::open_keyed`]; a row whose digits do not make a valid
/// number under its blind index keeps no digits (its masked form reads as stars).
pub fn seal_legacy(tx: &Tx<'_>, key: &[u8]) -> Result<usize> {
    let legacy: Vec<(i64, String, String, String)> = tx.query_map(
        "SELECT id, national_id_masked, birth_date, national_id_index FROM residents
         WHERE national_id_masked <> ''",
        (),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut sealed = 0;
    for (id, masked, birth, index) in legacy {
        let full = format!(
            "{}{}{}",
            masked.get(..6).unwrap_or_default(),
            birth.replace('-', ""),
            masked.get(14..).unwrap_or_default()
        );
        let fits = zhucan_domain::NationalId::parse(&full)
            .ok()
            .filter(|n| crate::crypto::blind_index(key, n) == index);
        let has_sealed: bool = tx.query_row(
            "SELECT national_id_sealed IS NOT NULL FROM residents WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if let (Some(n), false) = (fits, has_sealed) {
            let (_, nonce, ct) = crate::crypto::seal_national_id(key, &n)
                .map_err(|_| Error::other("sealing a national ID number"))?;
            tx.execute(
                "UPDATE residents SET national_id_nonce = ?2, national_id_sealed = ?3 WHERE id = ?1",
                params![id, nonce, ct],
            )?;
            sealed += 1;
        }
        tx.execute(
            "UPDATE residents SET national_id_masked = '' WHERE id = ?1",
            [id],
        )?;
    }
    if sealed > 0 {
        tracing::info!(sealed, "sealed the national ID numbers of older rows");
    }
    Ok(sealed)
}

/// The blind index and the sealed full national ID number of a resident (`None` for rows
/// written before the number was kept).
pub fn sealed_national_id(conn: &Conn<'_>, id: ResidentId) -> Result<(String, Option<Sealed>)> {
    conn.query_row(
        "SELECT national_id_index, national_id_nonce, national_id_sealed FROM residents
         WHERE id = ?1",
        [id.0],
        |r| {
            let nonce: Option<Vec<u8>> = r.get(1)?;
            let ciphertext: Option<Vec<u8>> = r.get(2)?;
            Ok((
                r.get(0)?,
                nonce
                    .zip(ciphertext)
                    .map(|(nonce, ciphertext)| Sealed { nonce, ciphertext }),
            ))
        },
    )
    .optional()?
    .ok_or(Error::NotFound)
}

/// Takes `amount` from the prepaid balance (used when a meal is paid from it); the new balance
/// is a roster change the kiosks pick up.
pub fn debit_prepaid(tx: &Tx<'_>, id: ResidentId, amount: Fen, at: &str) -> Result<()> {
    let n = tx.execute(
        "UPDATE residents SET prepaid_balance = prepaid_balance - ?2
         WHERE id = ?1 AND prepaid_balance IS NOT NULL",
        params![id.0, amount.0],
    )?;
    if n > 0 {
        changes::record(tx, Kind::Resident, Subject::Id(id.0), at)?;
    }
    Ok(())
}

/// A resident row's masked national ID number, `330782********1234`, from its blind index and
/// sealed number (`national_id_index`, `national_id_nonce`, `national_id_sealed`): the number is
/// opened with the server's key ([`Conn::keys`]) and masked here, in Rust, the same on both
/// databases. Eighteen stars when the connection has no keys (the database was opened without
/// the key), for a row with no sealed number, or when it does not open or parse. The database
/// itself holds no digit of any number in clear: its birth dates would complete them (see the
/// module documentation), so the masked form can only be computed with the key.
pub fn masked(conn: &Conn<'_>, index: &str, nonce: Option<&[u8]>, sealed: Option<&[u8]>) -> String {
    conn.keys()
        .zip(nonce.zip(sealed))
        .and_then(|(keys, (nonce, sealed))| {
            crate::crypto::open_national_id(&keys.server, index, nonce, sealed).ok()
        })
        .and_then(|n| zhucan_domain::NationalId::parse(&n).ok())
        .map_or_else(|| "*".repeat(18), |n| n.masked())
}

/// The columns [`masked`] needs, in its order, for a select list.
pub const MASK_COLS: &str = "national_id_index, national_id_nonce, national_id_sealed";

/// The national ID columns of a row ([`MASK_COLS`]): its masked form is computed only where it
/// is shown.
struct IdCols {
    index: String,
    nonce: Option<Vec<u8>>,
    sealed: Option<Vec<u8>>,
}

impl IdCols {
    /// Reads [`MASK_COLS`] from columns `at`, `at + 1`, `at + 2`.
    fn read(r: &super::sql::Row<'_>, at: usize) -> Result<IdCols> {
        Ok(IdCols {
            index: r.get(at)?,
            nonce: r.get(at + 1)?,
            sealed: r.get(at + 2)?,
        })
    }

    fn masked(&self, conn: &Conn<'_>) -> String {
        masked(
            conn,
            &self.index,
            self.nonce.as_deref(),
            self.sealed.as_deref(),
        )
    }
}

const COLS: &str = "id, name, sex, birth_date, local_registration, registered_town, residence_town,
    status, deceased_on, card_code, designated_canteen, prepaid_balance, consent_face,
    consent_sharing, face_enrolled, national_id_index, national_id_nonce, national_id_sealed";

fn from_row(r: &super::sql::Row<'_>) -> Result<(Resident, IdCols)> {
    let sex: String = r.get(2)?;
    let birth: String = r.get(3)?;
    let status: String = r.get(7)?;
    let deceased_on: Option<String> = r.get(8)?;
    let bad =
        |c: usize, e: chrono::ParseError| Error::other(format!("column {c} ({}): {e}", r.name(c)));
    let status = match (status.as_str(), deceased_on) {
        ("suspended", _) => ResidentStatus::Suspended,
        ("deceased", Some(d)) => ResidentStatus::Deceased {
            date: d.parse().map_err(|e| bad(8, e))?,
        },
        _ => ResidentStatus::Active,
    };
    Ok((
        Resident {
            id: ResidentId(r.get(0)?),
            name: r.get(1)?,
            sex: if sex == "male" {
                Sex::Male
            } else {
                Sex::Female
            },
            birth_date: birth.parse().map_err(|e| bad(3, e))?,
            local_registration: r.get(4)?,
            registered_town: TownCode(r.get(5)?),
            residence_town: TownCode(r.get(6)?),
            categories: BTreeSet::new(),
            status,
            card_code: r.get(9)?,
            designated_canteen: r.get::<_, Option<i64>>(10)?.map(CanteenId),
            prepaid_balance: r.get::<_, Option<i64>>(11)?.map(Fen),
            consent: Consent {
                face_enrolment: flag(r.get(12)?),
                template_sharing: flag(r.get(13)?),
            },
            face_enrolled: flag(r.get(14)?),
        },
        IdCols::read(r, 15)?,
    ))
}

fn categories(conn: &Conn<'_>, id: ResidentId) -> Result<BTreeSet<Category>> {
    let rows = conn.query_map(
        "SELECT category FROM resident_categories WHERE resident_id = ?1",
        [id.0],
        |r| Ok(Category(r.get(0)?)),
    )?;
    Ok(rows.into_iter().collect())
}

/// The resident as the decision sees them (no national ID).
pub fn get(conn: &Conn<'_>, id: ResidentId) -> Result<Resident> {
    Ok(get_with_id(conn, id)?.0)
}

fn get_with_id(conn: &Conn<'_>, id: ResidentId) -> Result<(Resident, IdCols)> {
    let (mut r, cols) = conn
        .query_row(
            &format!("SELECT {COLS} FROM residents WHERE id = ?1"),
            [id.0],
            from_row,
        )
        .optional()?
        .ok_or(Error::NotFound)?;
    r.categories = categories(conn, id)?;
    Ok((r, cols))
}

pub fn get_dto(conn: &Conn<'_>, id: ResidentId) -> Result<ResidentDto> {
    let (r, cols) = get_with_id(conn, id)?;
    Ok(to_dto(&r, cols.masked(conn)))
}

/// Finds a resident by the blind index of their national ID number.
pub fn find_by_index(conn: &Conn<'_>, index: &str) -> Result<Option<ResidentId>> {
    conn.query_row(
        "SELECT id FROM residents WHERE national_id_index = ?1",
        [index],
        |r| Ok(ResidentId(r.get(0)?)),
    )
    .optional()
}

/// A page of residents, optionally of one residence town.
pub fn list(
    conn: &Conn<'_>,
    town: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<ResidentDto>> {
    let rows: Vec<(Resident, IdCols)> = conn.query_map(
        &format!(
            "SELECT {COLS} FROM residents WHERE (CAST(?1 AS TEXT) IS NULL OR residence_town = ?1)
             ORDER BY id LIMIT ?2 OFFSET ?3"
        ),
        params![town, limit, offset],
        from_row,
    )?;
    rows.into_iter()
        .map(|(mut r, cols)| {
            r.categories = categories(conn, r.id)?;
            Ok(to_dto(&r, cols.masked(conn)))
        })
        .collect()
}

pub fn to_dto(r: &Resident, masked: String) -> ResidentDto {
    let (status, deceased_on) = match r.status {
        ResidentStatus::Active => (StatusDto::Active, None),
        ResidentStatus::Suspended => (StatusDto::Suspended, None),
        ResidentStatus::Deceased { date } => (StatusDto::Deceased, Some(date)),
    };
    ResidentDto {
        id: r.id,
        name: r.name.clone(),
        sex: r.sex,
        birth_year: chrono::Datelike::year(&r.birth_date),
        national_id_masked: masked,
        local_registration: r.local_registration,
        registered_town: r.registered_town.0.clone(),
        residence_town: r.residence_town.0.clone(),
        categories: r.categories.iter().map(|c| c.0.clone()).collect(),
        status,
        deceased_on,
        card_code: r.card_code.clone(),
        designated_canteen: r.designated_canteen,
        prepaid_balance: r.prepaid_balance,
        consent: ConsentDto {
            face_enrolment: r.consent.face_enrolment,
            template_sharing: r.consent.template_sharing,
        },
        face_enrolled: r.face_enrolled,
    }
}

/// Names and masked IDs of all residents, for reports.
pub fn names(conn: &Conn<'_>) -> Result<std::collections::HashMap<i64, (String, String)>> {
    let mut out = std::collections::HashMap::new();
    conn.for_each(
        &format!("SELECT id, name, {MASK_COLS} FROM residents"),
        (),
        |r| {
            let cols = IdCols::read(r, 2)?;
            out.insert(r.get(0)?, (r.get(1)?, cols.masked(conn)));
            Ok(())
        },
    )?;
    Ok(out)
}

/// Every card code on file (the roster import checks against them).
pub fn card_codes(conn: &Conn<'_>) -> Result<std::collections::HashSet<String>> {
    let rows = conn.query_map("SELECT card_code FROM residents", (), |r| {
        r.get::<_, String>(0)
    })?;
    Ok(rows.into_iter().collect())
}

/// Residents as the decision sees them, for kiosk sync: everyone when `since` is `None`, else
/// those with a roster change after `since`. Two queries in all, whatever the count.
pub fn for_sync(conn: &Conn<'_>, since: Option<i64>) -> Result<Vec<Resident>> {
    let filter = "WHERE (CAST(?1 AS BIGINT) IS NULL OR id IN
        (SELECT subject_id FROM changes WHERE kind = 'resident' AND seq > ?1))";
    let mut cats: std::collections::HashMap<i64, BTreeSet<Category>> =
        std::collections::HashMap::new();
    conn.for_each(
        &format!(
            "SELECT resident_id, category FROM resident_categories
             WHERE resident_id IN (SELECT id FROM residents {filter})"
        ),
        [since],
        |r| {
            cats.entry(r.get(0)?)
                .or_default()
                .insert(Category(r.get(1)?));
            Ok(())
        },
    )?;
    conn.query_map(
        &format!("SELECT {COLS} FROM residents {filter} ORDER BY id"),
        [since],
        |row| {
            let (mut r, _) = from_row(row)?;
            r.categories = cats.remove(&r.id.0).unwrap_or_default();
            Ok(r)
        },
    )
}
