//! Face templates (encrypted at rest), their deletions waiting for the server, and the gallery.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use zhucan_domain::ResidentId;
use zhucan_domain::api::KioskResident;

use zhucan_face::matcher::Gallery;

use super::*;

impl Store {
    /// Replaces a resident's templates (enrolment here) and marks them enrolled with the consent
    /// given, so offline face decisions accept them.
    pub fn replace_templates(
        &self,
        resident: ResidentId,
        model: &str,
        embeddings: &[Vec<f32>],
        consent: zhucan_domain::resident::Consent,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM templates WHERE resident_id = ?1", [resident.0])?;
        // enrolled again here: the upload replaces the server's templates, nothing to delete
        tx.execute(
            "DELETE FROM template_deletions WHERE resident_id = ?1",
            [resident.0],
        )?;
        for e in embeddings {
            let (nonce, ct) = self.key.seal(resident.0, e)?;
            tx.execute(
                "INSERT INTO templates (resident_id, model, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)",
                params![resident.0, model, nonce, ct],
            )?;
        }
        let json: Option<String> = tx
            .query_row(
                "SELECT json FROM residents WHERE id = ?1",
                [resident.0],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(j) = json {
            let mut r: KioskResident = serde_json::from_str(&j)?;
            r.diner.face_ready = consent.face_enrolment;
            tx.execute(
                "UPDATE residents SET json = ?2 WHERE id = ?1",
                params![r.id().0, serde_json::to_string(&r)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a resident's templates and evidence photos here (unenrol), and records the
    /// deletion in the same transaction, so that no sync answer built before the server deleted
    /// them too can bring them back ([`Store::apply_sync`]). The deletion stays pending until
    /// [`Store::confirm_template_deletion`].
    pub fn delete_templates(&self, resident: ResidentId, now: DateTime<Utc>) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM templates WHERE resident_id = ?1", [resident.0])?;
        tx.execute("DELETE FROM evidence WHERE resident_id = ?1", [resident.0])?;
        tx.execute(
            "INSERT INTO template_deletions (resident_id, deleted_at, server_cursor)
             VALUES (?1, ?2, NULL)
             ON CONFLICT (resident_id) DO UPDATE SET deleted_at = excluded.deleted_at,
               server_cursor = NULL",
            params![resident.0, ts(now)],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// The server deleted the resident's templates too, recorded at its sync cursor `cursor`
    /// ([`REFUSED`]: the server refused, so the deletion here stands for good).
    pub fn confirm_template_deletion(&self, resident: ResidentId, cursor: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE template_deletions SET server_cursor = ?2 WHERE resident_id = ?1",
            params![resident.0, cursor],
        )?;
        Ok(())
    }

    /// Residents whose templates were deleted here and not yet on the server, oldest first.
    pub fn pending_template_deletions(&self) -> Result<Vec<ResidentId>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT resident_id FROM template_deletions WHERE server_cursor IS NULL
             ORDER BY deleted_at, resident_id",
        )?;
        let rows = st.query_map([], |r| Ok(ResidentId(r.get(0)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number of templates stored for a resident.
    pub fn template_count(&self, resident: ResidentId) -> Result<u32> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM templates WHERE resident_id = ?1",
            [resident.0],
            |r| r.get(0),
        )?)
    }

    /// Decrypts the templates of `model` into a gallery keyed by resident id.
    pub fn gallery(&self, model: &str, dim: usize) -> Result<Gallery> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT resident_id, nonce, ciphertext FROM templates WHERE model = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([model], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut g = Gallery::new(dim);
        for row in rows {
            let (rid, nonce, ct) = row?;
            let v = self.key.open(rid, &nonce, &ct)?;
            if let Err(e) = g.add(&rid.to_string(), &v) {
                tracing::warn!(resident = rid, error = %e, "skipped a template");
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{contains, now, open, raw_bytes, sync};

    use zhucan_domain::ResidentId;

    #[test]
    fn templates_and_embeddings_are_not_readable_in_the_database_files() {
        // a known embedding, as the server sends it (base64 of little-endian f32)
        let known: Vec<f32> = (0..128).map(|i| ((i as f32) * 0.37).sin() / 8.0).collect();
        let b64 = zhucan_domain::api::encode_embedding(&known);
        let le: Vec<u8> = known.iter().flat_map(|x| x.to_le_bytes()).collect();
        let local: Vec<f32> = (0..128).map(|i| ((i as f32) * 0.11).cos() / 8.0).collect();
        let local_le: Vec<u8> = local.iter().flat_map(|x| x.to_le_bytes()).collect();

        let (d, s) = open();
        let t = serde_json::json!([{"resident_id": 7, "enrolled_canteen": 1, "model": "m.onnx",
            "embeddings": [b64]}]);
        s.apply_sync(&sync(true, t, serde_json::json!([])), now())
            .expect("sync");
        s.replace_templates(
            ResidentId(7),
            "m.onnx",
            std::slice::from_ref(&local),
            zhucan_domain::resident::Consent {
                face_enrolment: true,
                template_sharing: false,
            },
        )
        .expect("enrol here");
        // the synced template is replaced by the local one; enrol the synced one again as well
        s.apply_sync(
            &sync(
                false,
                serde_json::json!([{"resident_id": 7, "enrolled_canteen": 1, "model": "m.onnx",
                    "embeddings": [b64, zhucan_domain::api::encode_embedding(&local)]}]),
                serde_json::json!([]),
            ),
            now(),
        )
        .expect("sync again");
        assert_eq!(s.template_count(ResidentId(7)).expect("n"), 2);
        assert_eq!(
            s.gallery("m.onnx", 128).expect("g").len(),
            2,
            "still usable"
        );

        let raw = raw_bytes(d.path(), &s);
        // the search works: the resident's name is stored in plain text and is found
        assert!(
            contains(&raw, "王建国".as_bytes()),
            "name not found: the search is broken"
        );
        for (what, needle) in [
            ("synced embedding (f32 LE)", &le[..]),
            ("first 16 bytes of it", &le[..16]),
            ("synced embedding (base64)", b64.as_bytes()),
            ("first 24 characters of the base64", &b64.as_bytes()[..24]),
            ("local embedding (f32 LE)", &local_le[..]),
            ("first 16 bytes of it", &local_le[..16]),
        ] {
            assert!(
                !contains(&raw, needle),
                "{what} is readable in the database files"
            );
        }
    }
}
