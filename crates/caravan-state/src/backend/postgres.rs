//! PostgreSQL: the durable store of a deployment. The leadership is a session advisory lock held
//! on a dedicated connection, plus the fencing epoch checked by every write transaction.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
// Dynamic SQL here is built only from the static table and column names of `TableId`.
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Row};
use std::str::FromStr;

use super::{Commit, Loaded, final_rows, table_by_name, to_i64, to_u64, upsert_many_sql};
use crate::error::StateError;
use crate::table::TableId;
use crate::txn::{Mutation, Op};

/// Advisory lock key of the leadership ("caravan" in ASCII).
const LEADER_LOCK: i64 = 0x0063_6172_6176_616e;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

pub(crate) struct Pg {
    pool: PgPool,
    /// Holds the advisory lock for as long as this server leads.
    _leader: PgConnection,
}

pub(crate) async fn migrate(url: &str) -> Result<(), StateError> {
    let mut conn = PgConnection::connect(url).await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

impl Pg {
    pub(crate) async fn open(url: &str) -> Result<Pg, StateError> {
        let opts = PgConnectOptions::from_str(url)?.application_name("caravan-server");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let mut leader = PgConnection::connect_with(&opts).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut leader)
            .await?;
        if !got {
            return Err(StateError::LeadershipHeld);
        }
        sqlx::query("UPDATE cluster_state SET epoch = epoch + 1 WHERE id = 1")
            .execute(&pool)
            .await?;
        Ok(Pg {
            pool,
            _leader: leader,
        })
    }

    pub(crate) async fn load(&self) -> Result<Loaded, StateError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let mut loaded = Loaded::default();
        let row = sqlx::query("SELECT current_index, epoch FROM cluster_state WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        loaded.current_index = to_u64(row.try_get("current_index")?);
        loaded.epoch = to_u64(row.try_get("epoch")?);
        for row in sqlx::query("SELECT tbl, idx FROM table_indexes")
            .fetch_all(&mut *tx)
            .await?
        {
            let name: String = row.try_get("tbl")?;
            if let Some(table) = table_by_name(&name) {
                loaded
                    .table_indexes
                    .insert(table, to_u64(row.try_get("idx")?));
            }
        }
        for table in TableId::ALL {
            let sql = format!(
                "SELECT key, doc::text AS doc FROM {} ORDER BY key",
                table.name()
            );
            let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
                .fetch_all(&mut *tx)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((row.try_get("key")?, row.try_get("doc")?));
            }
            loaded.rows.insert(table, out);
        }
        tx.commit().await?;
        Ok(loaded)
    }

    pub(crate) async fn commit(&self, c: Commit<'_>) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        let fenced = sqlx::query(
            "UPDATE cluster_state SET current_index = $1 \
             WHERE id = 1 AND epoch = $2 AND current_index = $3",
        )
        .bind(to_i64(c.new_index))
        .bind(to_i64(c.epoch))
        .bind(to_i64(c.old_index))
        .execute(&mut *tx)
        .await?;
        if fenced.rows_affected() != 1 {
            return Err(StateError::Fenced);
        }
        // The rows as they stand after the batch: one upsert and one delete per table.
        let rows = final_rows(c.muts);
        for table in TableId::ALL {
            let mut puts: Vec<&Mutation> = Vec::new();
            let mut deletes: Vec<String> = Vec::new();
            for ((t, key), m) in &rows {
                if *t != table {
                    continue;
                }
                match m.op {
                    Op::Put { .. } => puts.push(m),
                    Op::Delete => deletes.push((*key).to_owned()),
                }
            }
            if !puts.is_empty() {
                let ncols = table.columns().len();
                let mut keys = Vec::with_capacity(puts.len());
                let mut docs = Vec::with_capacity(puts.len());
                let mut creates = Vec::with_capacity(puts.len());
                let mut modifies = Vec::with_capacity(puts.len());
                let mut cols: Vec<Vec<String>> = vec![Vec::with_capacity(puts.len()); ncols];
                for m in puts {
                    if let Op::Put {
                        json,
                        create_index,
                        modify_index,
                        columns,
                    } = &m.op
                    {
                        keys.push(m.key.clone());
                        docs.push(json.to_string());
                        creates.push(to_i64(*create_index));
                        modifies.push(to_i64(*modify_index));
                        for (i, col) in cols.iter_mut().enumerate() {
                            col.push(columns.get(i).cloned().unwrap_or_default());
                        }
                    }
                }
                let sql = upsert_many_sql(table);
                let mut q = sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(keys)
                    .bind(docs)
                    .bind(creates)
                    .bind(modifies);
                for col in cols {
                    q = q.bind(col);
                }
                q.execute(&mut *tx).await?;
            }
            if !deletes.is_empty() {
                let sql = format!("DELETE FROM {} WHERE key = ANY($1)", table.name());
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(deletes)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // Every step goes to the change log (a write that touched a row twice logs it once).
        let mut logged = std::collections::BTreeMap::new();
        for m in c.muts {
            logged.insert((m.index, m.table.name(), m.key.as_str()), op_name(&m.op));
        }
        let mut idxs = Vec::with_capacity(logged.len());
        let mut tbls = Vec::with_capacity(logged.len());
        let mut keys = Vec::with_capacity(logged.len());
        let mut ops = Vec::with_capacity(logged.len());
        for ((idx, tbl, key), op) in logged {
            idxs.push(to_i64(idx));
            tbls.push(tbl);
            keys.push(key);
            ops.push(op);
        }
        sqlx::query(
            "INSERT INTO changelog (idx, tbl, key, op) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[])",
        )
        .bind(idxs)
        .bind(tbls)
        .bind(keys)
        .bind(ops)
        .execute(&mut *tx)
        .await?;
        let (tbls, idxs): (Vec<&str>, Vec<i64>) = c
            .table_indexes
            .iter()
            .map(|(t, i)| (t.name(), to_i64(*i)))
            .unzip();
        sqlx::query(
            "INSERT INTO table_indexes (tbl, idx) SELECT * FROM UNNEST($1::text[], $2::int8[]) \
             ON CONFLICT (tbl) DO UPDATE SET idx = excluded.idx",
        )
        .bind(tbls)
        .bind(idxs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn prune_changelog(&self, below: u64) -> Result<(), StateError> {
        sqlx::query("DELETE FROM changelog WHERE idx < $1")
            .bind(to_i64(below))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

pub(super) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Put { .. } => "put",
        Op::Delete => "delete",
    }
}
