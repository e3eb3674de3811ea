//! `TestDatabase` against the run's real PostgreSQL cluster (started by `scripts/test.sh`).

use std::time::Duration;

use caravan_test_utils::{TestDatabase, postgres_admin_url, wait_for};
use sqlx::{Connection, PgConnection};

async fn database_exists(name: &str) -> anyhow::Result<bool> {
    let mut admin = PgConnection::connect(&postgres_admin_url()).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await?;
    admin.close().await?;
    Ok(exists)
}

#[tokio::test]
async fn databases_are_isolated_and_dropped() {
    let first = TestDatabase::create().await.unwrap();
    let second = TestDatabase::create().await.unwrap();
    assert_ne!(first.name, second.name);
    assert!(first.name.starts_with("caravan_test_"), "{}", first.name);
    assert!(database_exists(&first.name).await.unwrap());
    assert!(database_exists(&second.name).await.unwrap());

    // Write to the first database; the connection stays open across the drop below, which
    // must end it (WITH (FORCE)) rather than fail.
    let mut conn1 = PgConnection::connect(&first.url).await.unwrap();
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn1)
        .await
        .unwrap();
    assert_eq!(current, first.name);
    sqlx::raw_sql("CREATE TABLE marker (id int PRIMARY KEY); INSERT INTO marker VALUES (7)")
        .execute(&mut conn1)
        .await
        .unwrap();
    let id: i32 = sqlx::query_scalar("SELECT id FROM marker")
        .fetch_one(&mut conn1)
        .await
        .unwrap();
    assert_eq!(id, 7);

    // The second database does not see it.
    let mut conn2 = PgConnection::connect(&second.url).await.unwrap();
    let seen: Option<String> = sqlx::query_scalar("SELECT to_regclass('marker')::text")
        .fetch_one(&mut conn2)
        .await
        .unwrap();
    assert_eq!(seen, None);
    conn2.close().await.unwrap();

    // Dropping the fixtures drops the databases.
    let names = [first.name.clone(), second.name.clone()];
    drop(first);
    drop(second);
    for name in &names {
        wait_for(
            &format!("database {name} to be dropped"),
            Duration::from_secs(30),
            || async { Ok(!database_exists(name).await?) },
        )
        .await
        .unwrap();
    }
    // The connection to the dropped database was terminated.
    assert!(sqlx::query("SELECT 1").execute(&mut conn1).await.is_err());
}

#[tokio::test]
async fn the_cluster_is_durable_and_roomy() {
    // scripts/test.sh promises fsync on and room for many connections; tests rely on both.
    let db = TestDatabase::create().await.unwrap();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let fsync: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(fsync, "on");
    let max_connections: String = sqlx::query_scalar("SHOW max_connections")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(max_connections.parse::<u32>().unwrap() >= 300);
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(superuser);
}
