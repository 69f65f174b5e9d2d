//! Evidence photos of face check-ins (encrypted, swept after their retention).

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use uuid::Uuid;

use super::*;

impl Store {
    /// The decrypted evidence photo of a settlement, if one is kept (incident review).
    pub fn evidence_photo(&self, settlement: Uuid) -> Result<Option<Vec<u8>>> {
        let id = settlement.to_string();
        let row: Option<(i64, Vec<u8>, Vec<u8>)> = self
            .conn()
            .query_row(
                "SELECT resident_id, nonce, ciphertext FROM evidence WHERE settlement_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(rid, nonce, ct)| self.evidence.open(rid, &id, &nonce, &ct))
            .transpose()
    }

    /// Number of evidence photos kept.
    pub fn evidence_count(&self) -> Result<u32> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM evidence", [], |r| r.get(0))?)
    }

    /// Deletes evidence photos taken more than `retention` before `now`; returns how many.
    pub fn sweep_evidence(&self, now: DateTime<Utc>, retention: chrono::Duration) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM evidence WHERE created_at < ?1",
            [ts(now - retention)],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::outbox::tests::commit_n;
    use super::testing::{accepted, contains, now, raw_bytes, signer, sync, sync_with, synced};

    use uuid::Uuid;

    #[test]
    fn evidence_photos_are_sealed_with_the_checkin_swept_after_retention_and_purged() {
        let (d, s) = synced();
        let jpeg = sample_jpeg();
        let (item, a) = accepted(&s, now());
        let signed = s
            .commit_checkin(&item, &a, &signer(), Some(&jpeg), now())
            .expect("commit");
        assert_eq!(s.evidence_count().expect("n"), 1);
        assert_eq!(
            s.evidence_photo(signed.id).expect("open"),
            Some(jpeg.clone())
        );
        // encrypted at rest: neither the JPEG header (FF D8 FF ...) nor a piece of its body is in
        // the database files
        let raw = raw_bytes(d.path(), &s);
        assert!(!contains(&raw, &jpeg[..20]), "JPEG header in the database");
        let mid = jpeg.len() / 2;
        assert!(
            !contains(&raw, &jpeg[mid..mid + 32]),
            "JPEG body in the database"
        );
        // the retention sweep runs on the injected clock: not yet at 29 days, gone after 30
        let keep = chrono::Duration::days(30);
        let sweep = |days: i64| {
            s.sweep_evidence(now() + chrono::Duration::days(days), keep)
                .expect("sweep")
        };
        assert_eq!(sweep(29), 0);
        assert_eq!(s.evidence_count().expect("n"), 1);
        assert_eq!(sweep(31), 1);
        assert_eq!(s.evidence_count().expect("n"), 0);
        assert_eq!(
            s.outbox_counts().expect("c").total,
            1,
            "the settlement stays"
        );

        // a purge from the server (consent withdrawn or death) deletes the resident's evidence,
        // and secure_delete leaves no ciphertext behind in the file
        let mut it = item.clone();
        it.id = Uuid::now_v7();
        s.commit_checkin(&it, &a, &signer(), Some(&jpeg), now())
            .expect("commit");
        let ct: Vec<u8> = s
            .conn()
            .query_row("SELECT ciphertext FROM evidence", [], |r| r.get(0))
            .expect("row");
        s.apply_sync(
            &sync(false, serde_json::json!([]), serde_json::json!([7])),
            now(),
        )
        .expect("purge");
        assert_eq!(s.evidence_count().expect("n"), 0);
        let raw = raw_bytes(d.path(), &s);
        assert!(!contains(&raw, &ct[..32]), "purged ciphertext overwritten");

        // a full snapshot that shows a withdrawn consent or a death purges as well
        for patch in [
            serde_json::json!({"face_ready": false}),
            serde_json::json!({"status": {"status": "deceased", "date": "2026-03-14"}}),
        ] {
            let mut it = item.clone();
            it.id = Uuid::now_v7();
            s.commit_checkin(&it, &a, &signer(), Some(&jpeg), now())
                .expect("commit");
            assert_eq!(s.evidence_count().expect("n"), 1);
            s.apply_sync(
                &sync_with(true, serde_json::json!([]), serde_json::json!([]), patch),
                now(),
            )
            .expect("snapshot");
            assert_eq!(s.evidence_count().expect("n"), 0);
            s.apply_sync(
                &sync(true, serde_json::json!([]), serde_json::json!([])),
                now(),
            )
            .expect("restore");
        }
    }

    #[test]
    fn without_a_photo_no_evidence_is_written() {
        let (_d, s) = synced();
        commit_n(&s, 2);
        assert_eq!(s.evidence_count().expect("n"), 0);
    }

    /// A real JPEG (what the face loop stores): a 112x112 gradient.
    fn sample_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(112, 112, |x, y| {
            image::Rgb([(x * 2) as u8, (y * 2) as u8, ((x + y) % 256) as u8])
        });
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 70)
            .encode_image(&img)
            .expect("jpeg");
        assert_eq!(&buf[..3], &[0xff, 0xd8, 0xff]);
        buf
    }
}
