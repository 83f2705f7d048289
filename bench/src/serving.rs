//! Phase 5, serving: the daemon over the first cycle's store against a
//! static server of the same bytes (the ceiling), under the same load.

use std::time::Duration;

use crate::load::{self, LoadResult, Workload};
use crate::procs::{proc_status_kb, Cycle, Daemon};
use crate::report::{ms, row, Row};
use crate::{synth, Run};

const FEED_PATH: &str = "/feeds/bench.atom";

pub async fn measure(run: &Run, first: &Cycle, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let mut app = Daemon::start("__serve", &run.config_path(), None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_kb = proc_status_kb(app.pid, "VmRSS").unwrap_or(0);
    let (body, etag) = load::get_once(app.addr, FEED_PATH).await?;
    eprintln!("{FEED_PATH}: {} bytes, ETag {etag}", body.len());
    let body_file = run.dir.join("bench.atom");
    std::fs::write(&body_file, &body)?;
    let mut ceiling = Daemon::start("__static", &body_file, Some(&etag)).await?;
    let duration = Duration::from_secs_f64(run.args.duration);
    let c = run.args.connections;
    let fixed = |etag: Option<&str>| Workload::Fixed {
        path: FEED_PATH.to_string(),
        if_none_match: etag.map(String::from),
    };
    let static_200 = load::run(ceiling.addr, c, duration, fixed(None)).await?;
    let app_200 = load::run(app.addr, c, duration, fixed(None)).await?;
    let static_304 = load::run(ceiling.addr, c, duration, fixed(Some(&etag))).await?;
    let app_304 = load::run(app.addr, c, duration, fixed(Some(&etag))).await?;
    let filtered = load::run(
        app.addr,
        c,
        duration,
        Workload::Filtered {
            vocabulary: synth::TAG_VOCABULARY,
        },
    )
    .await?;
    let served_hwm_kb = proc_status_kb(app.pid, "VmHWM").unwrap_or(0);
    app.stop().await;
    ceiling.stop().await;
    for (name, r) in [
        ("static 200", &static_200),
        ("app 200", &app_200),
        ("static 304", &static_304),
        ("app 304", &app_304),
        ("filtered", &filtered),
    ] {
        eprintln!("{name}: {}", r.summary());
    }
    let against = |what: &str, app: &LoadResult, ceiling: &LoadResult, target: &str| {
        row(
            what,
            format!("{:.0} req/s, p99 {}", app.rate(), ms(app.p(0.99))),
            format!(
                "static {:.0} req/s, p99 {}",
                ceiling.rate(),
                ms(ceiling.p(0.99))
            ),
            format!("{:.2}x", app.rate() / ceiling.rate()),
            target,
        )
    };
    rows.push(against(
        &format!(
            "cached 50-entry feed ({} KB), {c} connections",
            body.len() / 1024
        ),
        &app_200,
        &static_200,
        ">= 0.5x",
    ));
    rows.push(against(
        "its 304 (If-None-Match)",
        &app_304,
        &static_304,
        ">= 0.7x",
    ));
    rows.push(row(
        &format!(
            "uncached filtered page (`any`/`none`, random tags) over {} articles, {c} connections",
            first.inserted
        ),
        format!(
            "{:.0} req/s, p50 {}, p99 {}",
            filtered.rate(),
            ms(filtered.p(0.5)),
            ms(filtered.p(0.99))
        ),
        String::new(),
        String::new(),
        "p99 <= 20 ms",
    ));
    rows.push(row(
        "RSS of the daemon: idle after start / peak under load",
        format!(
            "{:.0} MB / {:.0} MB",
            idle_kb as f64 / 1024.0,
            served_hwm_kb as f64 / 1024.0
        ),
        String::new(),
        String::new(),
        "idle <= 40 MB",
    ));
    Ok(())
}
