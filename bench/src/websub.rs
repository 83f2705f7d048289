//! Phase 7: push latency through tributary-as-hub (issue #21). A daemon
//! (`Application::build` + `run_until_stopped`, as `tributary run`) with
//! `[websub] hub = "self"`, one source served here and a `[[webhook]]` on
//! the same feed; a subscriber written here subscribes to that feed. Each
//! round a new entry appears at the source and the source is refreshed
//! (what a WebSub push or the poll's tick would start); measured: the
//! delay from that publish to the subscriber's receipt of the
//! distribution, beside the webhook receiver's receipt of the same
//! article (the baseline of the same run) and the polling interval a
//! reader of the feed would otherwise wait on.

use crate::report::{row, Row};
use axum::body::Bytes;
use axum::extract::{Query, State};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary::app::Application;
use tributary::config::Config;

const ROUNDS: usize = 20;
/// What a reader polling the feed waits for on average: half of a common
/// 15-minute polling interval.
const POLL_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Receipts of one receiver: when each body containing a round's title came.
#[derive(Default)]
struct Receipts {
    at: Mutex<HashMap<String, Instant>>,
    notify: Notify,
}

impl Receipts {
    fn record(&self, body: &[u8]) {
        let text = String::from_utf8_lossy(body);
        let now = Instant::now();
        let mut at = self.at.lock().unwrap();
        for round in 0..ROUNDS {
            let title = title(round);
            if text.contains(&title) {
                at.entry(title).or_insert(now);
            }
        }
        drop(at);
        self.notify.notify_waiters();
    }

    async fn wait(&self, title: &str) -> Instant {
        loop {
            let notified = self.notify.notified();
            if let Some(at) = self.at.lock().unwrap().get(title) {
                return *at;
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), notified).await;
        }
    }
}

fn title(round: usize) -> String {
    format!("Pushed story number {round:03}")
}

fn feed(rounds: usize) -> String {
    let items: String = (0..rounds)
        .map(|r| {
            format!(
                "<item><title>{}</title><link>https://push.example/{r}</link>\
                 <guid>https://push.example/{r}</guid><category>push</category>\
                 <pubDate>Fri, 27 Nov 2026 10:{:02}:00 GMT</pubDate></item>",
                title(r),
                r % 60
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Push</title>\
         <link>https://push.example/</link>{items}</channel></rss>"
    )
}

async fn listen(app: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

pub async fn measure(run: &crate::Run, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    // The source: a feed whose body the rounds grow.
    let body = Arc::new(Mutex::new(feed(0)));
    let source = listen(axum::Router::new().route(
        "/push.xml",
        axum::routing::get({
            let body = body.clone();
            move || {
                let body = body.lock().unwrap().clone();
                async move { ([("content-type", "application/rss+xml")], body) }
            }
        }),
    ))
    .await?;
    // The subscriber: echoes the challenge, records distributions.
    let pushed = Arc::new(Receipts::default());
    let subscriber = listen(
        axum::Router::new()
            .route(
                "/callback",
                axum::routing::get(|Query(q): Query<HashMap<String, String>>| async move {
                    q.get("hub.challenge").cloned().unwrap_or_default()
                })
                .post(|State(r): State<Arc<Receipts>>, body: Bytes| async move {
                    r.record(&body);
                    "ok"
                }),
            )
            .with_state(pushed.clone()),
    )
    .await?;
    // The webhook receiver: the baseline.
    let hooked = Arc::new(Receipts::default());
    let receiver = listen(
        axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(|State(r): State<Arc<Receipts>>, body: Bytes| async move {
                    r.record(&body);
                    "ok"
                }),
            )
            .with_state(hooked.clone()),
    )
    .await?;

    let dir = run.dir.join("websub");
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("tributary.toml");
    std::fs::write(
        &config_path,
        format!(
            "[daemon]\ndatabase = \"sqlite://{}\"\nlisten = \"127.0.0.1:0\"\n\
             base_url = \"http://bench.test\"\nschedule = \"0 0 1 1 *\"\n\n\
             [[source]]\nname = \"push\"\nurl = \"{source}/push.xml\"\n\n\
             [[feed]]\nname = \"push\"\nany = [\"push\"]\n\n\
             [[webhook]]\nfeed = \"push\"\nurl = \"{receiver}/hook\"\n\
             secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\n\
             [websub]\nhub = \"self\"\nprivate_callbacks = true\n",
            dir.join("tributary.db").display()
        ),
    )?;
    let config = Config::load(&config_path)?;
    let app = Application::build(config.clone()).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(stop.clone()));

    // The daemon's own first fetch of the source, before the rounds' (a
    // claim it held would make a round's refresh skip the source).
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .source_states()
        .await?
        .iter()
        .any(|s| s.last_fetch_at.is_none())
    {
        anyhow::ensure!(Instant::now() < deadline, "the source was not fetched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = reqwest::Client::new();
    let callback = format!("{subscriber}/callback");
    let answer = client
        .post(format!("{base}/websub/hub"))
        .form(&[
            ("hub.mode", "subscribe"),
            ("hub.callback", callback.as_str()),
            ("hub.topic", "http://bench.test/feeds/push.atom"),
            ("hub.secret", "bench"),
        ])
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 202, "subscribe: {}", answer.status());
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .active_subscriptions(chrono::Utc::now())
        .await?
        .is_empty()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the subscription was not verified"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pipeline = Arc::new(tributary::pipeline::Pipeline::new(&config, store.clone())?);
    let names = vec!["push".to_string()];
    let (mut hub_delays, mut hook_delays) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        *body.lock().unwrap() = feed(round + 1);
        let published = Instant::now();
        let reports = tributary::scheduler::run_once(
            pipeline.clone(),
            "bench",
            &names,
            chrono::TimeDelta::minutes(5),
            CancellationToken::new(),
            |_| {},
        )
        .await?;
        anyhow::ensure!(
            reports.len() == 1,
            "round {round}: the source was not refreshed"
        );
        let title = title(round);
        let wait = Duration::from_secs(60);
        let pushed_at = tokio::time::timeout(wait, pushed.wait(&title))
            .await
            .map_err(|_| anyhow::anyhow!("round {round}: no distribution within 60 s"))?;
        let hooked_at = tokio::time::timeout(wait, hooked.wait(&title))
            .await
            .map_err(|_| anyhow::anyhow!("round {round}: no webhook message within 60 s"))?;
        hub_delays.push(pushed_at - published);
        hook_delays.push(hooked_at - published);
    }
    stop.cancel();
    daemon.await??;

    let (hub, hook) = (Stats::of(&mut hub_delays), Stats::of(&mut hook_delays));
    rows.push(row(
        &format!("WebSub: source publish -> subscriber receipt through tributary-as-hub ({ROUNDS} rounds)"),
        format!("p50 {}, max {}", ms(hub.p50), ms(hub.max)),
        format!("webhook receipt of the same article: p50 {}, max {}", ms(hook.p50), ms(hook.max)),
        format!("{:.2}x time", hub.p50.as_secs_f64() / hook.p50.as_secs_f64()),
        "seconds, not minutes",
    ));
    rows.push(row(
        "WebSub: the same against a reader polling every 15 min",
        format!("p50 {}", ms(hub.p50)),
        format!("{:.0} s on average", POLL_INTERVAL.as_secs_f64() / 2.0),
        format!(
            "{:.4}x time",
            hub.p50.as_secs_f64() / (POLL_INTERVAL.as_secs_f64() / 2.0)
        ),
        "",
    ));
    Ok(())
}

struct Stats {
    p50: Duration,
    max: Duration,
}

impl Stats {
    fn of(delays: &mut [Duration]) -> Stats {
        delays.sort();
        Stats {
            p50: delays[delays.len() / 2],
            max: delays[delays.len() - 1],
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
