//! Copying a city's SQLite database into an empty PostgreSQL database (`migrate-db`): every
//! table, every row, in one PostgreSQL transaction. The rows go in with `COPY ... FROM STDIN
//! (FORMAT binary)`, each value as the type the PostgreSQL column has; the PostgreSQL schema's
//! CHECKs, keys and triggers judge every row, so a row the server could not have written is
//! refused, naming its table. Identity columns continue after the largest copied id.
//!
//! Runs on a plain thread (the blocking pool): SQLite is read synchronously and each PostgreSQL
//! call blocks on the async driver, as in [`super::sql`].

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use super::sql::Value;
use super::{Error, Result};

/// One table of the PostgreSQL schema, as the copy needs it.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    /// Column names and types, in the table's order.
    pub columns: Vec<(String, Type)>,
    /// The identity column, if any (its sequence is moved past the copied ids).
    pub identity: Option<String>,
    /// The primary key's columns: rows are copied in its order.
    pub key: Vec<String>,
}

/// The tables of the `public` schema in an order their foreign keys allow (a table after every
/// table it references), leaving out the migrator's own `zhucan_schema_version`.
pub fn tables(rt: &tokio::runtime::Handle, client: &tokio_postgres::Client) -> Result<Vec<Table>> {
    let rows = rt.block_on(client.query(
        "SELECT c.table_name, c.column_name, c.udt_name, c.is_identity
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
           AND c.table_name <> 'zhucan_schema_version'
         ORDER BY c.table_name, c.ordinal_position",
        &[],
    ))?;
    let mut by_name: BTreeMap<String, Table> = BTreeMap::new();
    for r in &rows {
        let (table, column, udt, identity): (String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let ty = match udt.as_str() {
            "int8" => Type::INT8,
            "int4" => Type::INT4,
            "int2" => Type::INT2,
            "float8" => Type::FLOAT8,
            "text" => Type::TEXT,
            "bytea" => Type::BYTEA,
            "bool" => Type::BOOL,
            other => {
                return Err(Error::other(format!(
                    "{table}.{column}: type {other} is not copied (the schema uses BIGINT, \
                     DOUBLE PRECISION, TEXT and BYTEA)"
                )));
            }
        };
        let t = by_name.entry(table.clone()).or_insert_with(|| Table {
            name: table,
            columns: Vec::new(),
            identity: None,
            key: Vec::new(),
        });
        if identity == "YES" {
            t.identity = Some(column.clone());
        }
        t.columns.push((column, ty));
    }
    let keys = rt.block_on(client.query(
        "SELECT k.table_name, k.column_name
         FROM information_schema.table_constraints tc
         JOIN information_schema.key_column_usage k
           ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
         WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'
         ORDER BY k.table_name, k.ordinal_position",
        &[],
    ))?;
    for r in &keys {
        let (table, column): (String, String) = (r.get(0), r.get(1));
        if let Some(t) = by_name.get_mut(&table) {
            t.key.push(column);
        }
    }
    let refs = rt.block_on(client.query(
        "SELECT DISTINCT tc.table_name, ccu.table_name
         FROM information_schema.table_constraints tc
         JOIN information_schema.constraint_column_usage ccu
           ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
         WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'",
        &[],
    ))?;
    let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &refs {
        let (from, to): (String, String) = (r.get(0), r.get(1));
        if from != to {
            needs.entry(from).or_default().insert(to);
        }
    }
    // Kahn's algorithm, alphabetical among the ready: the same order every time.
    let mut order = Vec::new();
    let mut left: BTreeSet<String> = by_name.keys().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|t| {
                needs
                    .get(*t)
                    .is_none_or(|n| n.iter().all(|d| !left.contains(d)))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(Error::other(format!(
                "the foreign keys of {left:?} form a cycle: no order to copy them in"
            )));
        }
        for t in ready {
            left.remove(&t);
            order.extend(by_name.remove(&t));
        }
    }
    Ok(order)
}

/// Takes the servers' write lock ([`super::postgres::WRITE_LOCK`]) for the rest of `tx`: no
/// server process writes meanwhile.
pub fn hold_write_lock(
    rt: &tokio::runtime::Handle,
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<()> {
    rt.block_on(tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::postgres::WRITE_LOCK],
    ))?;
    Ok(())
}

/// Brings the planner's statistics up to date after a bulk copy (autovacuum would, later): the
/// first statements after `migrate-db` get the plans the data calls for.
pub fn analyze(rt: &tokio::runtime::Handle, client: &tokio_postgres::Client) -> Result<()> {
    rt.block_on(client.batch_execute("ANALYZE"))?;
    Ok(())
}

/// How many rows `table` has (on PostgreSQL).
pub fn count_postgres(
    rt: &tokio::runtime::Handle,
    client: &tokio_postgres::Client,
    table: &str,
) -> Result<i64> {
    let row = rt.block_on(client.query_one(&format!("SELECT count(*) FROM {table}"), &[]))?;
    Ok(row.get(0))
}

/// How many rows `table` has (on SQLite).
pub fn count_sqlite(conn: &rusqlite::Connection, table: &str) -> Result<i64> {
    Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
}

/// Copies every row of every table from `from` into `tx`, then moves each identity sequence
/// past the largest copied id. Returns the rows copied per table.
pub fn copy_all(
    rt: &tokio::runtime::Handle,
    from: &rusqlite::Connection,
    tx: &tokio_postgres::Transaction<'_>,
    tables: &[Table],
) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for t in tables {
        let n = copy_table(rt, from, tx, t)
            .map_err(|e| Error::other(format!("table {}: {}", t.name, super::chain(&e))))?;
        if let Some(id) = &t.identity {
            rt.block_on(tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', '{id}'),
                        COALESCE((SELECT max({id}) FROM {0}), 0) + 1, false)",
                    t.name
                ),
                &[],
            ))?;
        }
        out.push((t.name.clone(), n));
    }
    Ok(out)
}

fn copy_table(
    rt: &tokio::runtime::Handle,
    from: &rusqlite::Connection,
    tx: &tokio_postgres::Transaction<'_>,
    t: &Table,
) -> Result<u64> {
    let names: Vec<&str> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
    let list = names.join(", ");
    let types: Vec<Type> = t.columns.iter().map(|(_, ty)| ty.clone()).collect();
    let sink = rt.block_on(tx.copy_in(&format!(
        "COPY {} ({list}) FROM STDIN (FORMAT binary)",
        t.name
    )))?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    // In the order of the table's key, so identity values and chains go in as written.
    let order = if t.key.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", t.key.join(", "))
    };
    let mut st = from.prepare(&format!("SELECT {list} FROM {}{order}", t.name))?;
    let mut rows = st.query([])?;
    let mut values = Vec::with_capacity(names.len());
    while let Some(r) = rows.next()? {
        values.clear();
        for i in 0..names.len() {
            values.push(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(v) => Value::Integer(v),
                rusqlite::types::ValueRef::Real(v) => Value::Real(v),
                rusqlite::types::ValueRef::Text(v) => {
                    Value::Text(String::from_utf8(v.to_vec()).map_err(Error::other)?)
                }
                rusqlite::types::ValueRef::Blob(v) => Value::Blob(v.to_vec()),
            });
        }
        rt.block_on(writer.as_mut().write_raw(values.iter()))?;
    }
    Ok(rt.block_on(writer.finish())?)
}

/// The months that have books (settlements, adjustments or withholdings), in order: what
/// `migrate-db` compares statements of.
pub fn periods(conn: &super::Conn<'_>) -> Result<Vec<String>> {
    conn.query_map(
        "SELECT period FROM settlements UNION SELECT period FROM adjustments
         UNION SELECT period FROM withholdings ORDER BY 1",
        (),
        |r| r.get(0),
    )
}

/// Every kiosk's id, in order.
pub fn kiosk_ids(conn: &super::Conn<'_>) -> Result<Vec<i64>> {
    conn.query_map("SELECT id FROM kiosks ORDER BY id", (), |r| r.get(0))
}
