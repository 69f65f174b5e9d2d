//! The server's PostgreSQL schema on a real, throwaway PostgreSQL cluster (Debian's `postgresql`,
//! started in a temporary directory by `zhucan_testkit::postgres::Cluster`): the migrator, the
//! same tables and columns as the SQLite schema, and the invariants SQLite enforces with triggers
//! and CHECKs, also with two writers at once.

use std::time::Instant;

use tokio_postgres::{Client, NoTls};
use zhucan_server::db::{self, postgres};
use zhucan_testkit::postgres::Cluster;

/// A fresh cluster and a migrated connection to it.
async fn migrated() -> (Cluster, Client) {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("join")
        .expect("start a PostgreSQL cluster");
    let mut client = connect(&cluster).await;
    postgres::migrate(&mut client).await.expect("migrate");
    (cluster, client)
}

async fn connect(cluster: &Cluster) -> Client {
    let (client, connection) = tokio_postgres::connect(&cluster.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

fn conflict(e: &db::Error) -> &str {
    match e {
        db::Error::Conflict(m) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn migrations_run_once_in_one_transaction_and_a_newer_schema_is_refused() {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("join")
        .expect("cluster");
    let mut client = connect(&cluster).await;
    assert_eq!(postgres::current(&client).await.expect("current"), 0);

    // A failing migration leaves nothing behind: not the baseline before it, not the version.
    let broken: &[(i64, &str, &str)] = &[
        postgres::MIGRATIONS[0],
        (
            16,
            "0016_broken",
            "ALTER TABLE no_such_table ADD COLUMN x BIGINT;",
        ),
    ];
    let err = postgres::apply(&mut client, broken)
        .await
        .expect_err("broken");
    assert!(err.to_string().contains("0016_broken"), "{err}");
    assert_eq!(postgres::current(&client).await.expect("current"), 0);
    let towns = client
        .query_one("SELECT to_regclass('towns') IS NULL", &[])
        .await
        .expect("query");
    assert!(towns.get::<_, bool>(0), "the baseline was rolled back too");

    assert_eq!(
        postgres::migrate(&mut client).await.expect("migrate"),
        (0, 15)
    );
    assert_eq!(
        postgres::migrate(&mut client).await.expect("again"),
        (15, 15)
    );
    // Several server processes starting at once: one migrates, the others wait and find it done.
    let mut a = connect(&cluster).await;
    let mut b = connect(&cluster).await;
    let (ra, rb) = tokio::join!(postgres::migrate(&mut a), postgres::migrate(&mut b));
    assert_eq!((ra.expect("a"), rb.expect("b")), ((15, 15), (15, 15)));

    client
        .execute(
            "INSERT INTO zhucan_schema_version (version, name) VALUES (99, 'from the future')",
            &[],
        )
        .await
        .expect("insert");
    let err = postgres::migrate(&mut client).await.expect_err("newer");
    assert!(conflict(&err).contains("newer"), "{err}");
}

#[test]
fn every_sqlite_migration_has_its_postgres_twin() {
    assert_eq!(
        postgres::latest(),
        db::migrate::latest(),
        "a new migrations/server/NNNN_*.sql needs migrations/postgres/NNNN_*.sql"
    );
}

/// Every table and column of the SQLite schema, and no other, with the same nullability.
#[tokio::test]
async fn the_schema_has_the_same_tables_and_columns_as_on_sqlite() {
    let (_cluster, client) = migrated().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = db::Db::open(&dir.path().join("z.sqlite")).expect("open");
    let on_sqlite: Vec<(String, String, bool)> = sqlite
        .read_sync(|c| {
            let names: Vec<String> = c.query_map(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                   AND name NOT LIKE 'sqlite_%' ORDER BY name",
                (),
                |r| r.get(0),
            )?;
            let mut out = Vec::new();
            for t in names {
                let rows = c.query_map(&format!("PRAGMA table_info(\"{t}\")"), (), |r| {
                    // a PRIMARY KEY column is NOT NULL on PostgreSQL whatever it says
                    let notnull: i64 = r.get(3)?;
                    let pk: i64 = r.get(5)?;
                    Ok((r.get::<_, String>(1)?, notnull != 0 || pk != 0))
                })?;
                for (col, not_null) in rows {
                    out.push((t.clone(), col, not_null));
                }
            }
            Ok(out)
        })
        .expect("sqlite schema");
    let mut on_sqlite = on_sqlite;
    on_sqlite.sort();
    let mut on_postgres: Vec<(String, String, bool)> = client
        .query(
            "SELECT table_name::text, column_name::text, is_nullable = 'NO'
               FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name <> 'zhucan_schema_version'",
            &[],
        )
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    on_postgres.sort();
    let only_sqlite: Vec<_> = on_sqlite
        .iter()
        .filter(|c| !on_postgres.contains(c))
        .collect();
    let only_postgres: Vec<_> = on_postgres
        .iter()
        .filter(|c| !on_sqlite.contains(c))
        .collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only on SQLite: {only_sqlite:?}\nonly on PostgreSQL: {only_postgres:?}"
    );
    assert!(on_postgres.len() > 250, "{}", on_postgres.len());
}

#[tokio::test]
async fn the_audit_log_and_spot_checks_are_append_only() {
    let (_cluster, client) = migrated().await;
    client
        .execute(
            "INSERT INTO audit_log (at, actor, role, action, target, detail, prev_hash, hash)
             VALUES ('2026-03-01T00:00:00.000Z', 'admin-token', 'admin', 'x', 'y', '{}', $1, 'h1')",
            &[&"0".repeat(64)],
        )
        .await
        .expect("append");
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "TRUNCATE spot_checks",
    ] {
        let err = db::Error::from(client.execute(sql, &[]).await.expect_err(sql));
        assert!(conflict(&err).contains("append-only"), "{sql}: {err}");
    }
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE actor = 'admin-token'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);
}

/// A town, a canteen and a resident to hang settlements on.
async fn seed(client: &Client) {
    client
        .batch_execute(
            "INSERT INTO towns (code, name) VALUES ('choucheng', '稠城');
             INSERT INTO canteens (id, name, kind, town, operator, operator_kind)
                  VALUES (1, '稠城一食堂', 'care_centre', 'choucheng', '某', 'contracted');
             INSERT INTO residents (id, name, sex, birth_date, national_id_index,
                  national_id_masked, local_registration, registered_town, residence_town,
                  status, card_code, created_at)
                  VALUES (1, '某', 'female', '1940-01-01', 'i1', '3307**', 1, 'choucheng',
                          'choucheng', 'active', 'C1', '2026-03-01T00:00:00.000Z');",
        )
        .await
        .expect("seed");
}

/// Inserts an accepted lunch of 15 yuan (5 subsidy: 3 city, 2 town) with the extra `columns`
/// (each starting with a comma) set to `values`.
async fn settle(client: &Client, id: &str, columns: &str, values: &str) -> Result<u64, db::Error> {
    let sql = format!(
        "INSERT INTO settlements (id, canteen_id, resident_id, served_at, local_date, slot,
             method, delivered, outcome, price, subsidy, self_pay, city_fen, town_fen, other_fen,
             received_at, request_hash, period {columns})
         VALUES ('{id}', 1, 1, '2026-03-01T04:00:00.000Z', '2026-03-01', 'lunch', 'card', 0,
             'accepted', 1500, 500, 1000, 300, 200, 0, '2026-03-01T04:00:01.000Z', 'h', '2026-03'
             {values})"
    );
    client.execute(&sql, &[]).await.map_err(db::Error::from)
}

#[tokio::test]
async fn the_fen_of_a_settlement_add_up_and_its_lines_fit_inside_it() {
    let (_cluster, client) = migrated().await;
    seed(&client).await;
    settle(&client, "s1", "", "")
        .await
        .expect("a meal that adds up");
    // subsidy + self_pay = price, city + town + other = subsidy
    let err = client
        .execute("UPDATE settlements SET self_pay = 999 WHERE id = 's1'", &[])
        .await
        .expect_err("price");
    assert!(conflict(&db::Error::from(err)).contains("check"), "sums");
    let err = client
        .execute("UPDATE settlements SET city_fen = 301 WHERE id = 's1'", &[])
        .await
        .expect_err("funding");
    assert!(conflict(&db::Error::from(err)).contains("check"));
    // the lines (delivery, county, operating) fit inside the meal
    for (name, columns, values) in [
        ("delivery fee above the price", ", delivery_fee", ", 1600"),
        ("county above other", ", county_fen", ", 1"),
        ("operating without its source", ", operating_fen", ", 100"),
    ] {
        let err = settle(&client, "s2", columns, values)
            .await
            .expect_err(name);
        assert!(
            conflict(&err).contains("settlements_lines_fit"),
            "{name}: {err}"
        );
    }
    settle(
        &client,
        "s3",
        ", delivery_fee, operating_fen, operating_source",
        ", 300, 100, 'city'",
    )
    .await
    .expect("lines that fit");
}

/// Waits until `count` (a `SELECT count(*)` on `pg_locks`) answers at least `n`; fails after the
/// deadline, naming `what` it waited for. Lock waits have no notification to await, so this
/// polls the condition.
async fn until_locks(client: &Client, count: &str, n: i64, what: &str) {
    let deadline = Instant::now() + zhucan_testkit::WAIT;
    loop {
        let seen: i64 = client.query_one(count, &[]).await.expect("pg_locks").get(0);
        if seen >= n {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits until `n` sessions wait for a lock.
async fn until_waiting(client: &Client, n: i64) {
    let count = "SELECT count(*) FROM pg_locks WHERE NOT granted";
    until_locks(client, count, n, "a session waiting for a lock").await;
}

/// In a session of its own: runs `sql` with text `params` and commits. The error of either.
async fn insert_and_commit(
    mut client: Client,
    sql: &'static str,
    params: Vec<String>,
) -> Result<(), db::Error> {
    let tx = client.transaction().await?;
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p as _).collect();
    tx.execute(sql, &params).await?;
    tx.commit().await?;
    Ok(())
}

/// A card is a resident's or a carer's. Two writers adding one card to both tables at once: the
/// second waits for the first to commit, then is refused.
#[tokio::test]
async fn a_card_stays_one_persons_when_two_writers_race() {
    let (cluster, watcher) = migrated().await;
    seed(&watcher).await;
    let mut first = connect(&cluster).await;
    let second = connect(&cluster).await;
    let t1 = first.transaction().await.expect("t1");
    t1.execute(
        "INSERT INTO carers (name, card_code, created_at) VALUES ('代取人', 'C9', 'now')",
        &[],
    )
    .await
    .expect("carer");
    let racing = tokio::spawn(insert_and_commit(
        second,
        "INSERT INTO residents (name, sex, birth_date, national_id_index, national_id_masked,
             local_registration, registered_town, residence_town, status, card_code, created_at)
         VALUES ('某', 'male', '1940-01-01', 'i2', '3307**', 1, 'choucheng', 'choucheng',
             'active', 'C9', 'now')",
        Vec::new(),
    ));
    until_waiting(&watcher, 1).await;
    t1.commit().await.expect("commit the carer");
    let err = racing
        .await
        .expect("join")
        .expect_err("the resident with a carer's card");
    assert!(conflict(&err).contains("carer's card"), "{err}");
}

/// Two appends that read the same last row of the audit log: the second one cannot commit a
/// fork of the hash chain.
#[tokio::test]
async fn two_audit_appends_from_the_same_head_cannot_fork_the_chain() {
    let (cluster, watcher) = migrated().await;
    let genesis = "0".repeat(64);
    let mut first = connect(&cluster).await;
    let second = connect(&cluster).await;
    let append = "INSERT INTO audit_log (at, actor, role, action, target, detail, prev_hash, hash)
                  VALUES ('2026-03-01T00:00:00.000Z', 'a', 'admin', 'x', 'y', '{}', $1, $2)";
    let t1 = first.transaction().await.expect("t1");
    t1.execute(append, &[&genesis, &"h1"]).await.expect("first");
    let racing = tokio::spawn(insert_and_commit(
        second,
        append,
        vec![genesis.clone(), "h2".into()],
    ));
    until_waiting(&watcher, 1).await;
    t1.commit().await.expect("commit");
    let err = racing.await.expect("join").expect_err("a fork");
    assert!(conflict(&err).contains("audit_log_one_successor"), "{err}");
}

mod sql {
    //! `db::sql::Conn`: one SQL text, the same values on SQLite and on PostgreSQL.

    use std::sync::mpsc;

    use super::*;
    use zhucan_server::db::postgres::{Mode, transaction};
    use zhucan_server::db::sql::{Conn, Dialect, OptionalExtension, params};

    /// A row of every kind of value.
    type Values = (i64, f64, String, Vec<u8>, Option<i64>, bool);

    /// What both databases must agree on: write rows of every kind of value, read them back.
    fn round_trip(c: &Conn<'_>) -> db::Result<Vec<Values>> {
        let id = match c.dialect() {
            Dialect::Sqlite => "INTEGER PRIMARY KEY",
            Dialect::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        };
        c.execute_batch(&format!(
            "CREATE TABLE t (id {id}, r DOUBLE PRECISION NOT NULL, s TEXT NOT NULL,
                             b BYTEA NOT NULL, n BIGINT, f BIGINT NOT NULL CHECK (f IN (0, 1)))"
        ))?;
        // RETURNING gives the new id on both (no last_insert_rowid on PostgreSQL).
        let first: i64 = c.query_row(
            "INSERT INTO t (r, s, b, n, f) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![
                0.25f64,
                "稠城 'quoted' ?1",
                vec![0u8, 255],
                None::<i64>,
                true
            ],
            |r| r.get(0),
        )?;
        let changed = c.execute(
            "INSERT INTO t (r, s, b, n, f) VALUES (?, ?, ?, ?, ?)",
            params![-1.5f64, "", Vec::<u8>::new(), Some(i64::MIN), false],
        )?;
        assert_eq!(changed, 1);
        assert!(
            c.query_row("SELECT id FROM t WHERE s = ?1", ["no one"], |r| r
                .get::<_, i64>(0))
                .optional()?
                .is_none()
        );
        let total: i64 = c.query_row(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM t WHERE id >= ?1",
            [first],
            |r| r.get(0),
        )?;
        assert_eq!(total, i64::MIN);
        c.query_map("SELECT id, r, s, b, n, f FROM t ORDER BY id", (), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
    }

    #[tokio::test]
    async fn the_same_code_reads_and_writes_the_same_values_on_both_databases() {
        let (cluster, _client) = migrated().await;
        let on_sqlite = {
            let c = rusqlite::Connection::open_in_memory().expect("sqlite");
            round_trip(&Conn::sqlite(&c)).expect("on SQLite")
        };
        let pool = postgres::pool(&cluster.url(), 4).expect("pool");
        let on_postgres = transaction(&pool, Mode::Write, round_trip)
            .await
            .expect("on PostgreSQL");
        assert_eq!(on_sqlite, on_postgres);
        assert_eq!(on_postgres[0].2, "稠城 'quoted' ?1");
        assert_eq!(on_postgres.len(), 2);
    }

    #[tokio::test]
    async fn postgres_names_a_value_of_the_wrong_kind_and_an_unread_type() {
        let (cluster, _client) = migrated().await;
        let pool = postgres::pool(&cluster.url(), 2).expect("pool");
        let err = transaction(&pool, Mode::Write, |c| {
            c.execute(
                "INSERT INTO towns (code, name) VALUES (?1, ?2)",
                params![1i64, "x"],
            )
        })
        .await
        .expect_err("an integer for a text column");
        assert!(err.to_string().to_lowercase().contains("text"), "{err}");
        let err = transaction(&pool, Mode::Read, |c| {
            c.query_row("SELECT SUM(price) FROM canteen_slots", (), |r| {
                r.get::<_, Option<i64>>(0)
            })
        })
        .await
        .expect_err("NUMERIC");
        assert!(err.to_string().contains("CAST it in the SQL"), "{err}");
        // and a read-only transaction cannot write
        let err = transaction(&pool, Mode::Read, |c| {
            c.execute("INSERT INTO districts (code, name) VALUES ('d', 'D')", ())
        })
        .await
        .expect_err("read only");
        assert!(err.to_string().contains("read-only"), "{err:?}");
    }

    /// Two write transactions from two connections: the second starts only when the first has
    /// committed, as with SQLite's one writer; reads go on meanwhile.
    #[tokio::test]
    async fn write_transactions_take_turns_and_reads_do_not_wait() {
        let (cluster, watcher) = migrated().await;
        let pool = postgres::pool(&cluster.url(), 4).expect("pool");
        let (release, hold) = mpsc::channel::<()>();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                transaction(&pool, Mode::Write, move |c| {
                    c.execute(
                        "INSERT INTO districts (code, name) VALUES ('a', '第一')",
                        (),
                    )?;
                    hold.recv().map_err(db::Error::other)?;
                    Ok(())
                })
                .await
            }
        });
        // the first holds the write lock: wait until it does
        until_locks(
            &watcher,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
            1,
            "the first writer holding the write lock",
        )
        .await;
        let second = tokio::spawn({
            let pool = pool.clone();
            async move {
                transaction(&pool, Mode::Write, |c| {
                    // runs after the first committed: its row is there
                    let seen: i64 =
                        c.query_row("SELECT count(*) FROM districts", (), |r| r.get(0))?;
                    c.execute(
                        "INSERT INTO districts (code, name) VALUES ('b', '第二')",
                        (),
                    )?;
                    Ok(seen)
                })
                .await
            }
        });
        until_waiting(&watcher, 1).await;
        // a reader meanwhile sees the committed state (nothing yet) without waiting
        let read = transaction(&pool, Mode::Read, |c| {
            c.query_row("SELECT count(*) FROM districts", (), |r| r.get::<_, i64>(0))
        })
        .await
        .expect("read");
        assert_eq!(read, 0);
        release.send(()).expect("release the first");
        first.await.expect("join").expect("first");
        assert_eq!(second.await.expect("join").expect("second"), 1);
    }
}

mod ported {
    //! The db modules ported to `db::sql` run the same on both databases: one scenario, run
    //! through `Db::write`/`read` on an SQLite file and on PostgreSQL, gives the same
    //! answers.

    use super::*;
    use zhucan_domain::api::{DistrictDto, TownDto};
    use zhucan_server::db::changes::{self, Kind};
    use zhucan_server::db::{Db, towns};

    type Seen = (
        Vec<TownDto>,
        Vec<DistrictDto>,
        String,
        String,
        std::collections::HashMap<String, String>,
        Vec<String>,
        i64,
    );

    async fn scenario(db: &Db) -> Seen {
        let town = |code: &str, district: Option<&str>| TownDto {
            code: code.into(),
            name: format!("{code} 镇"),
            district: district.map(Into::into),
        };
        let (a, b) = (town("choucheng", None), town("fotang", None));
        db.write(move |c| {
            towns::insert_district(
                c,
                &DistrictDto {
                    code: "yiwu".into(),
                    name: "义乌市".into(),
                },
            )?;
            towns::insert(c, &a)?;
            towns::insert(c, &b)
        })
        .await
        .expect("towns");
        let again = town("choucheng", None);
        let duplicate = db
            .write(move |c| towns::insert(c, &again))
            .await
            .expect_err("a town twice")
            .to_string();
        let nowhere = town("x", Some("nowhere"));
        let unknown = db
            .write(move |c| towns::insert(c, &nowhere))
            .await
            .expect_err("an unknown district")
            .to_string();
        db.write(|c| {
            assert!(towns::set_district(
                c,
                "fotang",
                Some("yiwu"),
                "2026-03-01T00:00:00.000Z"
            )?);
            assert!(!towns::set_district(
                c,
                "nowhere",
                None,
                "2026-03-01T00:00:00.000Z"
            )?);
            changes::record(
                c,
                Kind::Void,
                changes::Subject::Key("s-1"),
                "2026-03-01T00:00:00.000Z",
            )
        })
        .await
        .expect("set district");
        db.read(|c| {
            Ok((
                towns::list(c)?,
                towns::list_districts(c)?,
                duplicate,
                unknown,
                towns::districts_of_towns(c)?,
                changes::keys_since(c, Kind::Void, 0)?,
                changes::latest(c)?,
            ))
        })
        .await
        .expect("read")
    }

    #[tokio::test]
    async fn towns_districts_and_the_change_log_answer_the_same_on_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = Db::open(&dir.path().join("z.sqlite")).expect("sqlite");
        let on_sqlite = scenario(&sqlite).await;

        let cluster = tokio::task::spawn_blocking(Cluster::start)
            .await
            .expect("join")
            .expect("cluster");
        let pg = Db::open_postgres(&cluster.url(), &[7; 32], 4)
            .await
            .expect("PostgreSQL");
        let on_postgres = scenario(&pg).await;
        assert_eq!(on_sqlite, on_postgres);
        assert_eq!(on_postgres.2, "conflict: town 'choucheng' already exists");
        assert_eq!(on_postgres.3, "district: no district 'nowhere'");
        assert_eq!(on_postgres.4["fotang"], "yiwu");
        assert_eq!(on_postgres.5, vec!["s-1".to_owned()]);
    }
}

mod ported_audit {
    //! The audit log through `db::sql`: the same chain on both databases, and on PostgreSQL a
    //! row rewritten behind the triggers' back (a superuser who disabled them) is found.

    use serde_json::json;
    use zhucan_server::db::audit::{self, Actor};
    use zhucan_server::db::{Db, sql::Conn};

    use super::*;

    async fn scenario(db: &Db) -> (Vec<audit::Row>, audit::Verdict, Vec<audit::Row>) {
        db.write(|c: &Conn<'_>| {
            for i in 0..5 {
                audit::append(
                    c,
                    &format!("2026-03-01T00:00:0{i}.000Z"),
                    &Actor::new("王芳", "admin"),
                    if i % 2 == 0 {
                        "town.created"
                    } else {
                        "login.failure"
                    },
                    &format!("town:t{i}"),
                    &json!({ "i": i, "名": "稠城" }),
                )?;
            }
            Ok(())
        })
        .await
        .expect("append");
        db.read(|c| {
            Ok((
                audit::page(c, Some(5), 2)?,
                audit::verify(c)?,
                audit::of_action(c, "login.failure")?,
            ))
        })
        .await
        .expect("read")
    }

    #[tokio::test]
    async fn the_audit_chain_is_the_same_on_both_and_a_rewrite_is_found_on_postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = Db::open(&dir.path().join("z.sqlite")).expect("sqlite");
        let on_sqlite = scenario(&sqlite).await;
        let (cluster, client) = migrated().await;
        let pg = Db::open_postgres(&cluster.url(), &[7; 32], 4)
            .await
            .expect("PostgreSQL");
        let on_postgres = scenario(&pg).await;
        assert_eq!(on_sqlite, on_postgres);
        assert_eq!(
            on_postgres.0.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![4, 3]
        );
        assert!(on_postgres.1.verified() && on_postgres.1.entries == 5);
        assert_eq!(on_postgres.2.len(), 2);

        client
            .batch_execute(
                "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
                 UPDATE audit_log SET actor = '别人' WHERE seq = 3;
                 ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;",
            )
            .await
            .expect("a superuser's rewrite");
        let verdict = pg.read(audit::verify).await.expect("verify");
        assert_eq!(verdict.broken_at, Some(3));
    }
}

mod migrate_db {
    //! `zhucan-server migrate-db`: a demo city's SQLite file moved into PostgreSQL holds the same
    //! books there, a second copy into the same database is refused, and an edit of the copy is
    //! found by the comparison.

    use chrono::TimeZone;
    use zhucan_server::db::Db;
    use zhucan_server::migrate_db;

    use super::*;

    const KEY: &[u8] = &[42; 32];

    #[tokio::test]
    async fn a_city_moved_to_postgres_has_the_same_statements_chains_and_audit_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("city.sqlite");
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 3, 20, 4, 0, 0)
            .single()
            .expect("time");
        let source = Db::open_keyed(&path, KEY, now).expect("sqlite");
        let s = source.clone();
        let summary = tokio::task::spawn_blocking(move || {
            zhucan_server::demo::populate(&s, KEY, chrono_tz::Asia::Shanghai, now, 7)
        })
        .await
        .expect("join")
        .expect("demo city");
        assert!(summary.settlements > 1000, "{summary:?}");
        let cluster = tokio::task::spawn_blocking(Cluster::start)
            .await
            .expect("join")
            .expect("cluster");

        let report = migrate_db::run(&path, &cluster.url(), KEY, now)
            .await
            .expect("migrate-db");
        assert!(report.ok(), "{:#?}", report.lines());
        let rows = |t: &str| report.tables.iter().find(|r| r.0 == t).map(|r| r.2);
        let (settlements, _) = source.read(db::settlements::counts).await.expect("counts");
        assert!(settlements >= summary.settlements);
        assert_eq!(rows("settlements"), Some(settlements));
        assert_eq!(rows("residents"), Some(summary.residents as i64));
        assert!(rows("audit_log").is_some_and(|n| n > 0));
        assert!(rows("chain_links").is_some_and(|n| n > 0));
        assert!(report.months.len() >= 2, "{:?}", report.months);
        assert!(report.months.iter().all(|m| m.2 > 0), "{:?}", report.months);
        assert!(
            report.kiosks.iter().any(|k| k.2 == "verified"),
            "{:?}",
            report.kiosks
        );

        // PostgreSQL serves it: a new meal's row continues the ids, the statement is the same
        let target = Db::open_postgres(&cluster.url(), KEY, 4)
            .await
            .expect("open");
        let month = report.months[0].0.clone();
        let m = month.clone();
        let here = target
            .read(move |c| zhucan_server::reports::statement(c, &m, &Default::default()))
            .await
            .expect("statement");
        assert!(
            here.books.verified() && here.books.checked > 0,
            "{:?}",
            here.books
        );

        // a second copy into the same database is refused, naming why
        let err = migrate_db::run(&path, &cluster.url(), KEY, now)
            .await
            .expect_err("not empty");
        assert!(err.to_string().contains("not empty"), "{err}");

        // an edit of the copy is found: the month's statement differs, and its books MAC names it
        let client = connect(&cluster).await;
        client
            .batch_execute(&format!(
                "UPDATE settlements SET subsidy = subsidy + 100, city_fen = city_fen + 100,
                    price = price + 100
                 WHERE id = (SELECT id FROM settlements WHERE period = '{month}'
                             AND outcome = 'accepted' AND voided_at IS NULL
                             ORDER BY id LIMIT 1)"
            ))
            .await
            .expect("edit");
        let again = migrate_db::compare(&source, &target, Vec::new())
            .await
            .expect("compare");
        assert!(!again.ok());
        let differs: Vec<_> = again.months.iter().filter(|m| !m.1).collect();
        assert_eq!(differs.len(), 1, "{:?}", again.months);
        assert_eq!(differs[0].0, month);
        let m = month.clone();
        let books = target
            .read(move |c| zhucan_server::db::books::check(c, &m))
            .await
            .expect("books");
        assert_eq!(books.altered_count, 1, "{books:?}");
    }
}

/// The command line: `migrate-db` moves a city's file (the default key file beside it) into an
/// empty database and says it verified; the server then serves it with `--db postgres://…`.
#[tokio::test]
async fn migrate_db_and_serve_from_the_command_line() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_zhucan-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("city.sqlite");
    let csv = dir.path().join("roster.csv");
    std::fs::write(
        &csv,
        format!(
            "姓名,性别,身份证号,户籍,户籍镇街,居住镇街,类别,状态,卡号\n\
             王阿婆,女,{},本地,稠城街道,稠城街道,,正常,CARD-1\n",
            zhucan_testkit::national_id(
                chrono::NaiveDate::from_ymd_opt(1940, 2, 3).expect("date"),
                5,
                false
            )
        ),
    )
    .expect("csv");
    let sqlite = db::Db::open(&file).expect("create");
    sqlite
        .write(|tx| {
            db::towns::insert(
                tx,
                &zhucan_domain::api::TownDto {
                    code: "choucheng".into(),
                    name: "稠城街道".into(),
                    district: None,
                },
            )
        })
        .await
        .expect("town");
    drop(sqlite);
    let out = Command::new(bin)
        .args(["import-residents"])
        .arg(&csv)
        .arg("--db")
        .arg(&file)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("join")
        .expect("cluster");
    let out = Command::new(bin)
        .args(["migrate-db", "--from"])
        .arg(&file)
        .args(["--to", &cluster.url()])
        .output()
        .expect("migrate-db");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("table residents"), "{stdout}");
    assert!(stdout.contains("verified:"), "{stdout}");
    assert!(!stdout.contains("DIFFERS"), "{stdout}");
    // without a key file there is nothing to open the sealed numbers with: refused, named
    let out = Command::new(bin)
        .args(["migrate-db", "--from"])
        .arg(dir.path().join("nowhere.sqlite"))
        .args(["--to", &cluster.url()])
        .output()
        .expect("migrate-db");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--secret-key-file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the copy serves: the resident is there, under the same key
    let key = {
        let mut p = file.as_os_str().to_owned();
        p.push(".key");
        std::path::PathBuf::from(p)
    };
    let key = zhucan_server::config::load_or_create_key(&key).expect("the city's key");
    let served = db::Db::open_at(
        &db::Location::Postgres(cluster.url()),
        &key.0,
        chrono::Utc::now(),
    )
    .await
    .expect("open");
    let residents = served
        .read(|c| db::residents::list(c, None, 10, 0))
        .await
        .expect("list");
    assert_eq!(residents.len(), 1);
    assert_eq!(residents[0].name, "王阿婆");
    assert!(residents[0].national_id_masked.contains('*'));
    assert_ne!(
        residents[0].national_id_masked,
        "*".repeat(18),
        "opened with the key"
    );
}
