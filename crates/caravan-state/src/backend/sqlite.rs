//! SQLite: the embedded store of `agent -dev` and single-node set-ups. WAL journal with
//! `synchronous = FULL`, so an acknowledged write survives a crash.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
// Dynamic SQL here is built only from the static table and column names of `TableId`.
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::postgres::op_name;
use super::{Commit, Loaded, table_by_name, to_i64, to_u64, upsert_sql};
use crate::error::StateError;
use crate::table::TableId;
use crate::txn::Op;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

pub(crate) struct Lite {
    pool: SqlitePool,
}

fn options(url: &str) -> Result<SqliteConnectOptions, StateError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10)))
}

pub(crate) async fn migrate(url: &str) -> Result<(), StateError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options(url)?)
        .await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(())
}

impl Lite {
    pub(crate) async fn open(url: &str) -> Result<Lite, StateError> {
        // One writer connection: SQLite serializes writers anyway, and reads come from memory.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options(url)?)
            .await?;
        MIGRATOR.run(&pool).await?;
        sqlx::query("UPDATE cluster_state SET epoch = epoch + 1 WHERE id = 1")
            .execute(&pool)
            .await?;
        Ok(Lite { pool })
    }

    pub(crate) async fn load(&self) -> Result<Loaded, StateError> {
        let mut tx = self.pool.begin().await?;
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
            let sql = format!("SELECT key, doc FROM {} ORDER BY key", table.name());
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
        for m in c.muts {
            match &m.op {
                Op::Put {
                    json,
                    create_index,
                    modify_index,
                    columns,
                } => {
                    let sql = upsert_sql(m.table, "");
                    let mut q = sqlx::query(AssertSqlSafe(sql.as_str()))
                        .bind(&m.key)
                        .bind(&**json)
                        .bind(to_i64(*create_index))
                        .bind(to_i64(*modify_index));
                    for col in columns {
                        q = q.bind(col);
                    }
                    q.execute(&mut *tx).await?;
                }
                Op::Delete => {
                    let sql = format!("DELETE FROM {} WHERE key = $1", m.table.name());
                    sqlx::query(AssertSqlSafe(sql.as_str()))
                        .bind(&m.key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            sqlx::query(
                "INSERT INTO changelog (idx, tbl, key, op) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (idx, tbl, key) DO UPDATE SET op = excluded.op",
            )
            .bind(to_i64(m.index))
            .bind(m.table.name())
            .bind(&m.key)
            .bind(op_name(&m.op))
            .execute(&mut *tx)
            .await?;
        }
        for (table, idx) in c.table_indexes {
            sqlx::query(
                "INSERT INTO table_indexes (tbl, idx) VALUES ($1, $2) \
                 ON CONFLICT (tbl) DO UPDATE SET idx = excluded.idx",
            )
            .bind(table.name())
            .bind(to_i64(*idx))
            .execute(&mut *tx)
            .await?;
        }
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
