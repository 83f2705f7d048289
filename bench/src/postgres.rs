//! Phase 6, scale-out: the daemon's scheduler fetching every source into
//! PostgreSQL, one instance and then two on one database.

use anyhow::bail;
use std::time::{Duration, Instant};

use crate::ingest::config_toml;
use crate::procs::Daemon;
use crate::report::{row, Row};
use crate::{roles, Run};

pub async fn measure(run: &Run, server: &str, rows: &mut Vec<Row>) {
    let total_entries = run.total_entries() as f64;
    match scale(run, server).await {
        Ok((one, two)) => {
            rows.push(row(
                "PostgreSQL, 1 daemon: first fetch of every source (wall)",
                format!("{:.2} s, {:.0} entries/s", one, total_entries / one),
                "Miniflux: ~285 entries/s".into(),
                String::new(),
                "",
            ));
            rows.push(row(
                "PostgreSQL, 2 daemons on one database (wall)",
                format!("{:.2} s, {:.0} entries/s", two, total_entries / two),
                "1 daemon".into(),
                format!("{:.2}x throughput", one / two),
                "",
            ));
        }
        Err(e) => rows.push(row(
            "PostgreSQL scale-out",
            String::new(),
            format!("skipped: {e:#}"),
            String::new(),
            "",
        )),
    }
}

/// First fetch of every source by the daemon's scheduler on PostgreSQL,
/// with one instance and then two on one database: wall seconds each.
async fn scale(run: &Run, server: &str) -> anyhow::Result<(f64, f64)> {
    let total_entries = run.total_entries();
    let database = format!("{}/tributary_bench", server.trim_end_matches('/'));
    let config = run.dir.join("postgres.toml");
    std::fs::write(
        &config,
        config_toml(&database, run.feed_server, run.args.sources),
    )?;
    let mut seconds = Vec::new();
    for instances in [1, 2] {
        roles::recreate_database(server, "tributary_bench").await?;
        // The schema and sources exist before the clock starts.
        tributary::app::open_store(&tributary::config::Config::load(&config)?)
            .await?
            .close()
            .await;
        let store = tributary::store::Store::connect(&database, &Default::default()).await?;
        let watch = sqlx::PgPool::connect(&database).await?;
        let started = Instant::now();
        let mut daemons = Vec::new();
        for _ in 0..instances {
            daemons.push(Daemon::start("__daemon", &config, None).await?);
        }
        // A refresh records its fetch in the transaction that stores its
        // articles: done when every source has one. (Counting the articles
        // this often was a tenth of the server's work.)
        loop {
            let waiting: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM sources WHERE last_fetch_at IS NULL")
                    .fetch_one(&watch)
                    .await?;
            if waiting == 0 {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("PostgreSQL run stuck with {waiting} sources not fetched");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        seconds.push(elapsed);
        for mut d in daemons {
            d.stop().await;
        }
        let count = store.article_count().await? as usize;
        if count != total_entries {
            bail!("PostgreSQL run stored {count} of {total_entries} articles");
        }
        watch.close().await;
        store.close().await;
        eprintln!("PostgreSQL, {instances} instance(s): {elapsed:.2} s");
    }
    Ok((seconds[0], seconds[1]))
}
