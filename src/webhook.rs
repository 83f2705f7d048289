//! Webhook delivery (docs/CONFIG.md "Webhooks"): the loop that claims due
//! messages from the store's outbox, POSTs each article to its receiver
//! signed as the Standard Webhooks specification says, and records the
//! answer: delivered on a 2xx, else tried again with exponential backoff
//! until `give_up_after`. At least once: a message whose answer was lost
//! (a crash, a timeout) is sent again under the same `webhook-id`.

use crate::clock::Clock;
use crate::config::{Config, WebhookConfig, WebhookFormat, WebhookSecret};
use crate::model::Article;
use crate::publish;
use crate::store::{Delivery, Store, WebhookRoute};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Messages claimed at once; also the bound on deliveries in flight.
pub const BATCH: i64 = 16;
/// How often the outbox is looked at for due messages: the most a new
/// article waits before its first attempt.
pub const POLL: Duration = Duration::from_secs(1);
/// The wait after the first failed attempt; doubled after each further
/// failure, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Delivered and given-up messages are kept this long (for `tributary
/// hooks`), then deleted.
pub const KEEP_DONE: Duration = Duration::from_secs(30 * 86_400);
/// How much of a failing receiver's answer is kept as its error.
const ERROR_BODY: usize = 200;

/// The routes the ingest queues new articles for, from `config`.
pub fn routes(config: &Config) -> Vec<WebhookRoute> {
    config
        .webhooks
        .iter()
        .map(|w| WebhookRoute {
            name: w.name.clone(),
            filter: w.filter.clone(),
        })
        .collect()
}

/// The Standard Webhooks headers of one message: `webhook-id`,
/// `webhook-timestamp` (Unix seconds) and `webhook-signature`, `v1,` and
/// the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the secret's
/// key.
pub fn signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(&secret.0).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF)
}

/// The body a webhook sends for `article`.
pub fn body(format: WebhookFormat, article: &Article) -> (String, &'static str) {
    match format {
        WebhookFormat::Json => (publish::json::item(article), "application/json"),
        WebhookFormat::Atom => (
            publish::atom::entry_document(article),
            "application/atom+xml;type=entry; charset=utf-8",
        ),
    }
}

/// The delivery loop: claims due messages of the webhooks `config` has now
/// (it may change at a reload), delivers them, until `shutdown`; then
/// gives back its leases so that the next start sends those at once.
pub async fn run(
    store: Store,
    config: impl Fn() -> Arc<Config> + Send,
    owner: String,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let mut last_purge: Option<DateTime<Utc>> = None;
    // Kept across passes (its connections, its TLS setup); built again
    // when a reload changes what it was built from.
    let mut client: Option<(ClientSettings, reqwest::Client)> = None;
    loop {
        let config = config();
        let settings = ClientSettings::of(&config);
        let client = match &client {
            Some((built, client)) if *built == settings => client.clone(),
            _ => {
                let built = settings.client();
                client = Some((settings, built.clone()));
                built
            }
        };
        let delivered = match deliver_due(&store, &config, &client, &owner, &clock, &shutdown).await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "webhook outbox unavailable");
                0
            }
        };
        let now = clock.now();
        if last_purge.is_none_or(|at| now - at > TimeDelta::hours(1)) {
            last_purge = Some(now);
            let before = now - TimeDelta::from_std(KEEP_DONE).unwrap_or(TimeDelta::days(30));
            if let Err(e) = store.purge_outbox(before).await {
                tracing::warn!(error = %e, "webhook outbox purge failed");
            }
        }
        if delivered == 0 || shutdown.is_cancelled() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
    if let Err(e) = store.release_deliveries(&owner).await {
        tracing::warn!(error = %e, "could not release webhook leases");
    }
}

/// One pass: claims up to [`BATCH`] due messages and delivers them at
/// once; how many were claimed.
async fn deliver_due(
    store: &Store,
    config: &Config,
    client: &reqwest::Client,
    owner: &str,
    clock: &Clock,
    shutdown: &CancellationToken,
) -> Result<usize, crate::store::StoreError> {
    if config.webhooks.is_empty() {
        return Ok(0);
    }
    let hooks: HashMap<&str, &WebhookConfig> = config
        .webhooks
        .iter()
        .map(|w| (w.name.as_str(), w))
        .collect();
    let names: Vec<String> = hooks.keys().map(|n| n.to_string()).collect();
    let longest = config
        .webhooks
        .iter()
        .map(|w| w.timeout)
        .max()
        .unwrap_or_default();
    let now = clock.now();
    // As a source's lease: the longest attempt, and a margin.
    let lease = TimeDelta::from_std(longest + Duration::from_secs(30)).unwrap_or(TimeDelta::MAX);
    let claimed = store
        .claim_deliveries(owner, &names, now, now + lease, BATCH)
        .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = claimed.iter().map(|d| d.article_id).collect();
    let articles: HashMap<i64, Article> = store
        .articles_by_id(&ids)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut tasks = JoinSet::new();
    for delivery in &claimed {
        let Some(hook) = hooks.get(delivery.webhook.as_str()) else {
            continue;
        };
        let (store, clock, client) = (store.clone(), clock.clone(), client.clone());
        let (delivery, hook) = (delivery.clone(), (*hook).clone());
        let article = articles.get(&delivery.article_id).cloned();
        tasks.spawn(async move {
            let outcome = match &article {
                Some(article) => attempt(&client, &hook, &delivery, article, clock.now()).await,
                None => Err(Failure::Final(
                    "the article was pruned before it was delivered".into(),
                )),
            };
            record(&store, &hook, &delivery, outcome, clock.now()).await;
        });
    }
    tokio::select! {
        // At a stop, attempts in flight are dropped: their leases are
        // released and the messages sent again at the next start.
        _ = shutdown.cancelled() => tasks.abort_all(),
        _ = async { while tasks.join_next().await.is_some() {} } => {}
    }
    Ok(claimed.len())
}

/// Why an attempt failed: worth trying again, or not.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Retry(String),
    Final(String),
}

/// One POST of `article` to `hook`'s receiver.
async fn attempt(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    delivery: &Delivery,
    article: &Article,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let (body, content_type) = body(hook.format, article);
    let timestamp = now.timestamp();
    let signature = signature(&hook.secret, &delivery.message_id, timestamp, &body);
    let request = client
        .post(hook.url.clone())
        .header("content-type", content_type)
        .header("webhook-id", &delivery.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body);
    send(request, hook.timeout).await
}

/// Sends `request` within `timeout`: delivered on a 2xx; anything else is
/// worth another try later, its error saying why (the status, and a
/// little of the answer).
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(), Failure> {
    let sent = request.timeout(timeout).send().await;
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_timeout() => {
            return Err(Failure::Retry(format!(
                "no answer within {}s",
                timeout.as_secs_f64()
            )))
        }
        Err(e) => return Err(Failure::Retry(error_chain(e))),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // A little of the answer says why; a receiver's body is not read
    // further than that.
    let mut text = String::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.len() >= ERROR_BODY {
            break;
        }
    }
    let text = shown(&text);
    let error = match text.is_empty() {
        true => format!("HTTP {}", status.as_u16()),
        false => format!("HTTP {}: {text}", status.as_u16()),
    };
    Err(Failure::Retry(error))
}

/// A receiver's words as `tributary hooks` and the log may show them: at
/// most [`ERROR_BODY`] characters on one line, control characters (a
/// terminal's escapes) as spaces.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(ERROR_BODY)
        .collect()
}

/// Writes an attempt's outcome to the outbox and the metrics.
async fn record(
    store: &Store,
    hook: &WebhookConfig,
    delivery: &Delivery,
    outcome: Result<(), Failure>,
    now: DateTime<Utc>,
) {
    let written = match outcome {
        Ok(()) => {
            crate::metrics::record_webhook(&hook.name, true);
            tracing::info!(webhook = %hook.name, id = %delivery.message_id, attempts = delivery.attempts, "webhook delivered");
            store.mark_delivered(delivery.id, now).await
        }
        Err(failure) => {
            crate::metrics::record_webhook(&hook.name, false);
            let (error, retry_at) = retry_or_give_up(failure, delivery, hook.give_up_after, now);
            match retry_at {
                Some(next) => {
                    tracing::warn!(webhook = %hook.name, id = %delivery.message_id, attempts = delivery.attempts, error = %error, next = %next, "webhook failed; will retry")
                }
                None => {
                    tracing::error!(webhook = %hook.name, id = %delivery.message_id, attempts = delivery.attempts, error = %error, "webhook given up")
                }
            }
            store.mark_failed(delivery.id, &error, now, retry_at).await
        }
    };
    if let Err(e) = written {
        // The lease runs out and the message is tried again.
        tracing::warn!(webhook = %hook.name, error = %e, "could not record a webhook attempt");
    }
}

/// A failed attempt's error, and when to try `delivery` again: after
/// [`backoff`], unless that is past `give_up_after` since it was queued
/// (or the failure is final): `None`, given up.
pub(crate) fn retry_or_give_up(
    failure: Failure,
    delivery: &Delivery,
    give_up_after: Duration,
    now: DateTime<Utc>,
) -> (String, Option<DateTime<Utc>>) {
    let give_up_at =
        delivery.created_at + TimeDelta::from_std(give_up_after).unwrap_or(TimeDelta::MAX);
    match failure {
        Failure::Final(error) => (error, None),
        Failure::Retry(error) => {
            let next =
                now + TimeDelta::from_std(backoff(delivery.attempts)).unwrap_or(TimeDelta::MAX);
            (error, (next <= give_up_at).then_some(next))
        }
    }
}

/// What the client webhooks (and the WebSub hub's requests) are sent
/// with is built from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClientSettings {
    user_agent: String,
    connect_timeout: Duration,
}

impl ClientSettings {
    pub(crate) fn of(config: &Config) -> ClientSettings {
        ClientSettings {
            user_agent: config.daemon.user_agent.clone(),
            connect_timeout: config.daemon.timeout,
        }
    }

    /// No redirects (a receiver answers where it is configured), no
    /// referer, the daemon's user agent.
    fn client(&self) -> reqwest::Client {
        self.builder().build().unwrap_or_default()
    }

    pub(crate) fn builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(self.connect_timeout)
    }
}

/// An error and its causes, without the URL (the receiver's may carry a
/// token).
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The specification's own example (standard-webhooks, spec/
        // standard-webhooks.md "Signature scheme").
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let secret = WebhookSecret(key.into());
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_receivers_answer_is_shown_on_one_line_without_escapes() {
        assert_eq!(
            shown("  \x1b[31mbusy\x1b[0m\r\n  try later\n"),
            "[31mbusy [0m try later"
        );
        assert_eq!(shown(&"x".repeat(1000)).len(), ERROR_BODY);
    }

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_an_hour() {
        let waits: Vec<u64> = [1, 2, 3, 4, 10, 11, 1000]
            .map(|n| backoff(n).as_secs())
            .to_vec();
        assert_eq!(waits, [5, 10, 20, 40, 2560, 3600, 3600]);
    }
}
