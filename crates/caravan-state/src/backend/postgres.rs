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

    /// Commits a batch in ONE statement (one round trip, atomic in autocommit): data-modifying
    /// CTEs for the fenced index, each table's upserts and deletes, the change log and the table
    /// indexes, every write gated on the fence so a deposed leader writes nothing.
    pub(crate) async fn commit(&self, c: Commit<'_>) -> Result<(), StateError> {
        let mut sql = CommitSql::default();
        let new_index = sql.param();
        let epoch = sql.param();
        let old_index = sql.param();
        sql.ctes.push(format!(
            "fence AS (UPDATE cluster_state SET current_index = {new_index} \
             WHERE id = 1 AND epoch = {epoch} AND current_index = {old_index} RETURNING 1)"
        ));
        let mut binds = Binds::default();
        binds.ints.push(vec![to_i64(c.new_index)]);
        binds.ints.push(vec![to_i64(c.epoch)]);
        binds.ints.push(vec![to_i64(c.old_index)]);
        binds
            .order
            .extend([Bind::Int(0), Bind::Int(1), Bind::Int(2)]);

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
                let first = sql.next;
                sql.next += 4 + ncols;
                sql.ctes.push(format!(
                    "up_{t} AS ({upsert})",
                    t = table.name(),
                    upsert = upsert_many_sql(table, first, "WHERE EXISTS (SELECT 1 FROM fence)")
                ));
                binds.push_text(keys);
                binds.push_text(docs);
                binds.push_int(creates);
                binds.push_int(modifies);
                for col in cols {
                    binds.push_text(col);
                }
            }
            if !deletes.is_empty() {
                let p = sql.param();
                sql.ctes.push(format!(
                    "del_{t} AS (DELETE FROM {t} WHERE key = ANY({p}::text[]) \
                     AND EXISTS (SELECT 1 FROM fence))",
                    t = table.name()
                ));
                binds.push_text(deletes);
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
            tbls.push(tbl.to_owned());
            keys.push(key.to_owned());
            ops.push(op.to_owned());
        }
        let (p1, p2, p3, p4) = (sql.param(), sql.param(), sql.param(), sql.param());
        sql.ctes.push(format!(
            "log AS (INSERT INTO changelog (idx, tbl, key, op) \
             SELECT * FROM UNNEST({p1}::int8[], {p2}::text[], {p3}::text[], {p4}::text[]) \
             WHERE EXISTS (SELECT 1 FROM fence))"
        ));
        binds.push_int(idxs);
        binds.push_text(tbls);
        binds.push_text(keys);
        binds.push_text(ops);
        let (tbls, idxs): (Vec<String>, Vec<i64>) = c
            .table_indexes
            .iter()
            .map(|(t, i)| (t.name().to_owned(), to_i64(*i)))
            .unzip();
        let (p1, p2) = (sql.param(), sql.param());
        sql.ctes.push(format!(
            "tbl_idx AS (INSERT INTO table_indexes (tbl, idx) \
             SELECT * FROM UNNEST({p1}::text[], {p2}::int8[]) WHERE EXISTS (SELECT 1 FROM fence) \
             ON CONFLICT (tbl) DO UPDATE SET idx = excluded.idx)"
        ));
        binds.push_text(tbls);
        binds.push_int(idxs);

        let text = format!("WITH {} SELECT count(*) FROM fence", sql.ctes.join(",\n"));
        let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(text.as_str()));
        let (mut ints, mut texts) = (binds.ints.into_iter(), binds.texts.into_iter());
        for b in binds.order {
            query = match b {
                // The three scalars of the fence are bound as scalars, the rest as arrays.
                Bind::Int(i) if i < 3 => {
                    query.bind(ints.next().and_then(|v| v.first().copied()).unwrap_or(0))
                }
                Bind::Int(_) => query.bind(ints.next().unwrap_or_default()),
                Bind::Text => query.bind(texts.next().unwrap_or_default()),
            };
        }
        let fenced: i64 = query.fetch_one(&self.pool).await?;
        if fenced != 1 {
            return Err(StateError::Fenced);
        }
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

/// Numbers the `$n` parameters of the commit statement as its parts are added.
#[derive(Default)]
struct CommitSql {
    ctes: Vec<String>,
    /// The next parameter number minus one.
    next: usize,
}

impl CommitSql {
    fn param(&mut self) -> String {
        self.next += 1;
        format!("${}", self.next)
    }
}

/// Values to bind, in parameter order.
#[derive(Default)]
struct Binds {
    ints: Vec<Vec<i64>>,
    texts: Vec<Vec<String>>,
    order: Vec<Bind>,
}

enum Bind {
    /// The n-th integer value (the first three are the fence's scalars).
    Int(usize),
    Text,
}

impl Binds {
    fn push_int(&mut self, v: Vec<i64>) {
        self.order.push(Bind::Int(self.ints.len()));
        self.ints.push(v);
    }

    fn push_text(&mut self, v: Vec<String>) {
        self.order.push(Bind::Text);
        self.texts.push(v);
    }
}

pub(super) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Put { .. } => "put",
        Op::Delete => "delete",
    }
}
