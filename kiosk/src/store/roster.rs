//! The canteen, its policies and the roster as this kiosk holds them: residents (card codes only
//! as keyed hashes) and carers.

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, params};
use zhucan_domain::api::{self, KioskResident};
use zhucan_domain::{Canteen, Policy, ResidentId};

use crate::screen::ResidentHit;

use super::*;

impl Store {
    pub fn canteen(&self) -> Result<Option<Canteen>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT json FROM canteen WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    pub fn policies(&self) -> Result<Vec<Policy>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT json FROM policies ORDER BY id, version")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for j in rows {
            out.push(serde_json::from_str(&j?)?);
        }
        Ok(out)
    }

    pub fn resident(&self, id: ResidentId) -> Result<Option<KioskResident>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT json FROM residents WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// The resident whose card code is `code`, found by its keyed hash (the clear code is not
    /// stored here: [`api::card_index`]).
    pub fn resident_by_card(&self, code: &str) -> Result<Option<KioskResident>> {
        let Some(index) = self.card_index(code)? else {
            return Ok(None);
        };
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT json FROM residents WHERE card_index = ?1",
                [index],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// The carer (代取人) whose card code is `code`, found by its keyed hash.
    pub fn carer_by_card(&self, code: &str) -> Result<Option<api::KioskCarer>> {
        let Some(index) = self.card_index(code)? else {
            return Ok(None);
        };
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT json FROM carers WHERE card_index = ?1",
                [index],
                |r| r.get(0),
            )
            .optional()?;
        Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    /// The keyed hash of a card code under the card key of the last sync (`None` before one).
    fn card_index(&self, code: &str) -> Result<Option<String>> {
        let key = self.setting("card_key")?;
        Ok(key
            .and_then(|k| api::decode_key(&k))
            .map(|k| api::card_index(&k, code)))
    }

    /// Operator search by (part of) the name, or by the exact card code, at most 20 hits.
    pub fn search(&self, query: &str, today: NaiveDate) -> Result<Vec<ResidentHit>> {
        let q = query.trim();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let like = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let index = self.card_index(q)?;
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT json, (SELECT COUNT(*) FROM templates t WHERE t.resident_id = r.id)
             FROM residents r
             WHERE card_index = ?1 OR name LIKE ?2 ESCAPE '\\'
             ORDER BY name, id LIMIT 20",
        )?;
        let rows = st.query_map(params![index, like], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (j, templates) = row?;
            let r: KioskResident = serde_json::from_str(&j)?;
            out.push(ResidentHit {
                id: r.id(),
                age: r.diner.age_on(today),
                has_card: r.card.is_some(),
                name: r.name,
                face_enrolled: templates > 0,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{contains, now, raw_bytes, synced};

    use rusqlite::Connection;

    use zhucan_domain::ResidentId;

    use secret::TemplateKey;

    use super::*;

    /// A stolen kiosk's disk: residents are held as the decision needs them, card codes only as
    /// keyed hashes, yet the card box and the operator's search still find them by the code.
    #[test]
    fn card_codes_are_held_only_as_keyed_hashes_and_still_find_the_resident() {
        let (d, s) = synced();
        let by_card = s.resident_by_card(" CARD7 ").expect("card").expect("found");
        assert_eq!(
            (by_card.id(), by_card.name.as_str()),
            (ResidentId(7), "王建国")
        );
        assert!(s.resident_by_card("CARD8").expect("card").is_none());
        let hits = s.search("CARD7", now().date_naive()).expect("search");
        assert_eq!(hits.len(), 1);
        assert!(hits[0].has_card);
        let raw = raw_bytes(d.path(), &s);
        assert!(!contains(&raw, b"CARD7"), "no clear card code in the files");
        assert!(
            contains(&raw, "王建国".as_bytes()),
            "the name is there (the screen needs it)"
        );
        // a resident's JSON on disk is the kiosk's view: no sex, card code or consent flags
        let json: String = s
            .conn()
            .query_row("SELECT json FROM residents WHERE id = 7", [], |r| r.get(0))
            .expect("row");
        for absent in [
            "sex",
            "card_code",
            "designated_canteen",
            "consent",
            "national",
        ] {
            assert!(!json.contains(absent), "{absent} in {json}");
        }
    }

    /// A kiosk from before held whole residents with clear card codes: the migration drops them
    /// and the next sync is a full snapshot in the new shape.
    #[test]
    fn a_store_holding_whole_residents_drops_them_and_syncs_again_in_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("kiosk.sqlite");
        {
            let mut c = Connection::open(&p).expect("open");
            let tx = c.transaction().expect("tx");
            for (_, sql) in &MIGRATIONS[..3] {
                tx.execute_batch(sql).expect("migration");
            }
            tx.pragma_update(None, "user_version", 3).expect("v3");
            tx.execute(
                "INSERT INTO residents (id, name, card_code, json) VALUES (7, '王建国', 'CARD7', '{}')",
                [],
            )
            .expect("old row");
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('sync_cursor', '42')",
                [],
            )
            .expect("cursor");
            tx.commit().expect("commit");
        }
        let s = Store::open(&p, TemplateKey::from_bytes([1; 32])).expect("migrate");
        assert_eq!(
            s.cursor().expect("cursor"),
            0,
            "the next pull is a full snapshot"
        );
        assert!(s.resident(ResidentId(7)).expect("r").is_none());
        let raw = raw_bytes(dir.path(), &s);
        assert!(
            !contains(&raw, b"CARD7"),
            "the old clear card code is overwritten"
        );
    }
}
