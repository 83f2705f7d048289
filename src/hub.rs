//! WebSub publishing (docs/CONFIG.md "WebSub"): with `[websub] hub = URL`,
//! pings to that hub (`hub.mode=publish`) when feeds change; with `hub =
//! "self"`, tributary as the hub of its own feeds: subscribers' intents
//! verified, new entries distributed to them signed, leases honoured.
//!
//! Both ride on the webhook outbox (`store/outbox.rs`, `webhook.rs`): the
//! ingest queues, in the article's own transaction, a row per new article
//! and subscription whose topic holds it (recipient `websub:{id}`), or one
//! per new article for the pinger (`websub-ping:`); this loop claims them
//! with leases, so several instances on one PostgreSQL send each once,
//! and retries with the webhooks' backoff until `give_up_after`.

use crate::clock::Clock;
use crate::config::{Config, HubMode};
use crate::fetch::{literal_ip, public_resolver, AddressClass};
use crate::model::{Article, Filter};
use crate::publish::{self, Format, Site, ViewRequest};
use crate::store::{
    recipient_subscription, subscription_recipient, Delivery, HubSubscription, Store, StoreError,
    WebhookRoute, PING_RECIPIENT,
};
use crate::webhook::{retry_or_give_up, send, ClientSettings, Failure};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use url::Url;

/// How often the outbox is looked at (as webhooks'): the most a new
/// article waits before it is distributed or pinged.
pub const POLL: Duration = Duration::from_millis(250);
/// How often subscriptions whose lease ended are deleted.
const PRUNE_EVERY: TimeDelta = TimeDelta::minutes(1);
/// Distributions claimed at once: the most entries one distribution holds,
/// and the bound on requests in flight.
pub const BATCH: i64 = 50;
/// New articles one publish ping covers.
pub const PING_BATCH: i64 = 500;
/// Verifications in flight at once; a subscription request beyond that is
/// answered 503, to come back later.
pub const VERIFICATIONS: usize = 32;
/// The longest challenge echo read back.
const ECHO_LIMIT: usize = 1024;

/// What tells a topic (one of our feed URLs) into the view it names: the
/// server's routes (`server::topic_view`), given from above.
pub type TopicResolver = fn(&Config, &str) -> Result<ViewRequest, String>;

/// A subscriber's request, checked (docs/HTTP.md "WebSub hub").
#[derive(Debug, Clone)]
pub struct Intent {
    pub subscribe: bool,
    pub topic: String,
    pub callback: Url,
    pub secret: Option<String>,
    pub lease_seconds: i64,
}

/// Verifications in flight, process-wide.
static VERIFYING: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(VERIFICATIONS)));

/// Whether a callback may be reached: public addresses only, unless
/// `private_callbacks`. A name resolving to no public address is refused
/// here; one that changes its answer later is refused at connect time
/// (the hub's client connects to public addresses only).
pub async fn check_callback(callback: &Url, private_callbacks: bool) -> Result<(), String> {
    if private_callbacks {
        return Ok(());
    }
    let refused = |class: AddressClass| {
        format!(
            "hub.callback {} is not a public address ({class:?}); \
             this hub calls back public addresses only",
            crate::redact::public_url(callback.as_str())
        )
    };
    if let Some(ip) = literal_ip(callback) {
        return match AddressClass::of(ip) {
            AddressClass::Public => Ok(()),
            class => Err(refused(class)),
        };
    }
    let host = callback.host_str().unwrap_or_default().to_string();
    let port = callback.port_or_known_default().unwrap_or(80);
    let lookup = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await;
    let addresses: Vec<_> = match lookup {
        Ok(Ok(addresses)) => addresses.collect(),
        _ => return Err(format!("hub.callback host {host:?} does not resolve")),
    };
    match addresses.iter().map(|a| AddressClass::of(a.ip())).min() {
        Some(AddressClass::Public) => Ok(()),
        Some(class) => Err(refused(class)),
        None => Err(format!("hub.callback host {host:?} does not resolve")),
    }
}

/// The client the hub calls subscribers with: the webhooks' settings,
/// public addresses only unless `private_callbacks`.
fn hub_client(config: &Config) -> reqwest::Client {
    let builder = ClientSettings::of(config).builder();
    let builder = match config.websub.private_callbacks {
        true => builder,
        false => builder.dns_resolver(public_resolver()),
    };
    builder.build().unwrap_or_default()
}

/// Verifies `intent` in the background (WebSub §5.3: the request was
/// answered 202 first): a GET to the callback with a challenge, which a
/// 2xx answer must echo exactly; then the subscription is stored (or
/// removed). False when too many verifications are in flight.
pub fn verify_later(
    store: Store,
    config: Arc<Config>,
    resolve: TopicResolver,
    intent: Intent,
    clock: Clock,
) -> bool {
    let Ok(permit) = VERIFYING.clone().try_acquire_owned() else {
        return false;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let client = hub_client(&config);
        let mode = if intent.subscribe {
            "subscribe"
        } else {
            "unsubscribe"
        };
        let verified = verify(&client, &config, &intent, mode).await;
        let callback = crate::redact::public_url(intent.callback.as_str());
        if let Err(why) = verified {
            crate::metrics::record_websub_verification(false);
            tracing::warn!(mode, topic = %intent.topic, callback = %callback, why = %why, "websub intent not verified");
            return;
        }
        let now = clock.now();
        let stored = match intent.subscribe {
            true => subscribe(&store, &config, &intent, now).await,
            false => store
                .remove_subscription(&intent.topic, intent.callback.as_str())
                .await
                .map(|_| Ok(())),
        };
        match stored {
            Ok(Ok(())) => {
                crate::metrics::record_websub_verification(true);
                tracing::info!(mode, topic = %intent.topic, callback = %callback, lease_seconds = intent.lease_seconds, "websub intent verified");
                // New articles are queued to it from now on, not from the
                // next pass of the loop.
                if let Err(e) = sync_routes(&store, &config, resolve, now).await {
                    tracing::warn!(error = %e, "websub routes not updated");
                }
            }
            Ok(Err(why)) => {
                crate::metrics::record_websub_verification(false);
                tracing::warn!(topic = %intent.topic, callback = %callback, why = %why, "websub subscription refused")
            }
            Err(e) => {
                crate::metrics::record_websub_verification(false);
                tracing::warn!(error = %e, "websub subscription not stored")
            }
        }
    });
    true
}

/// The verification request and its answer.
async fn verify(
    client: &reqwest::Client,
    config: &Config,
    intent: &Intent,
    mode: &str,
) -> Result<(), String> {
    let challenge = format!("{:032x}", rand::random::<u128>());
    let mut url = intent.callback.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("hub.mode", mode)
            .append_pair("hub.topic", &intent.topic)
            .append_pair("hub.challenge", &challenge);
        if intent.subscribe {
            query.append_pair("hub.lease_seconds", &intent.lease_seconds.to_string());
        }
    }
    let response = client
        .get(url)
        .timeout(config.websub.timeout)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let mut echo = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        echo.extend_from_slice(&chunk);
        if echo.len() > ECHO_LIMIT {
            return Err("the answer is longer than any challenge".into());
        }
    }
    match echo == challenge.as_bytes() {
        true => Ok(()),
        false => Err("the answer does not echo hub.challenge".into()),
    }
}

/// Stores a verified subscription, within `max_subscriptions` (a renewal
/// always passes).
async fn subscribe(
    store: &Store,
    config: &Config,
    intent: &Intent,
    now: DateTime<Utc>,
) -> Result<Result<(), String>, StoreError> {
    let (renewal, count) = store
        .subscription_count(&intent.topic, intent.callback.as_str(), now)
        .await?;
    let max = config.websub.max_subscriptions;
    if !renewal && usize::try_from(count).unwrap_or(usize::MAX) >= max {
        return Ok(Err(format!(
            "the hub holds its maximum of {max} subscriptions"
        )));
    }
    store
        .upsert_subscription(
            &intent.topic,
            intent.callback.as_str(),
            intent.secret.as_deref(),
            intent.lease_seconds,
            now,
        )
        .await?;
    Ok(Ok(()))
}

/// Tells the store which routes the ingest queues new articles to: one
/// per active subscription, its topic's filter (hub = "self"), or the
/// pinger's (an external hub), or none.
pub async fn sync_routes(
    store: &Store,
    config: &Config,
    resolve: TopicResolver,
    now: DateTime<Utc>,
) -> Result<Vec<HubSubscription>, StoreError> {
    match &config.websub.hub {
        None => {
            store.set_hub_routes(Vec::new());
            Ok(Vec::new())
        }
        Some(HubMode::External(_)) => {
            store.set_hub_routes(vec![WebhookRoute {
                name: PING_RECIPIENT.to_string(),
                filter: Filter::default(),
            }]);
            Ok(Vec::new())
        }
        Some(HubMode::Itself) => {
            let subscriptions = store.active_subscriptions(now).await?;
            let routes = subscriptions
                .iter()
                .filter_map(|s| {
                    let view = resolve(config, &s.topic).ok()?;
                    Some(WebhookRoute {
                        name: subscription_recipient(s.id),
                        filter: view.filter,
                    })
                })
                .collect();
            store.set_hub_routes(routes);
            Ok(subscriptions)
        }
    }
}

/// The hub loop: keeps the ingest's routes current, prunes ended leases,
/// and delivers what the outbox holds for the hub, until `shutdown`.
pub async fn run(
    store: Store,
    config: impl Fn() -> Arc<Config> + Send,
    resolve: TopicResolver,
    site: fn(&Config) -> Site,
    owner: String,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let mut client: Option<(Arc<Config>, reqwest::Client)> = None;
    let mut last_prune: Option<DateTime<Utc>> = None;
    loop {
        let config = config();
        // Built again when a reload changes the config.
        let client = match &client {
            Some((built, client)) if Arc::ptr_eq(built, &config) => client.clone(),
            _ => {
                let built = hub_client(&config);
                client = Some((config.clone(), built.clone()));
                built
            }
        };
        // Ended leases are deleted once a minute; until then they are
        // neither routed to nor claimed for (`sync_routes`, `pass`).
        let now = clock.now();
        if matches!(config.websub.hub, Some(HubMode::Itself))
            && last_prune.is_none_or(|at| now - at >= PRUNE_EVERY)
        {
            last_prune = Some(now);
            if let Err(e) = store.prune_subscriptions(now).await {
                tracing::warn!(error = %e, "websub hub: ended subscriptions not pruned");
            }
        }
        let sent = pass(&store, &config, resolve, site, &client, &owner, &clock).await;
        let sent = sent.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "websub hub: the store is unavailable");
            0
        });
        if sent == 0 || shutdown.is_cancelled() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
    if let Err(e) = store.release_deliveries(&owner).await {
        tracing::warn!(error = %e, "could not release websub leases");
    }
}

/// One pass; how many outbox rows it claimed.
async fn pass(
    store: &Store,
    config: &Config,
    resolve: TopicResolver,
    site: fn(&Config) -> Site,
    client: &reqwest::Client,
    owner: &str,
    clock: &Clock,
) -> Result<usize, StoreError> {
    let now = clock.now();
    let subscriptions = sync_routes(store, config, resolve, now).await?;
    let lease = TimeDelta::from_std(config.websub.timeout + Duration::from_secs(30))
        .unwrap_or(TimeDelta::MAX);
    match &config.websub.hub {
        None => Ok(0),
        Some(HubMode::External(hub)) => {
            let claimed = store
                .claim_deliveries(
                    owner,
                    &[PING_RECIPIENT.to_string()],
                    now,
                    now + lease,
                    PING_BATCH,
                )
                .await?;
            if !claimed.is_empty() {
                ping(store, config, &site(config), client, hub, &claimed, clock).await?;
            }
            Ok(claimed.len())
        }
        Some(HubMode::Itself) => {
            let names: Vec<String> = subscriptions
                .iter()
                .map(|s| subscription_recipient(s.id))
                .collect();
            let claimed = store
                .claim_deliveries(owner, &names, now, now + lease, BATCH)
                .await?;
            if !claimed.is_empty() {
                let site = site(config);
                distribute(
                    store,
                    config,
                    resolve,
                    &site,
                    client,
                    &subscriptions,
                    &claimed,
                    clock,
                )
                .await?;
            }
            Ok(claimed.len())
        }
    }
}

/// The `X-Hub-Signature` of `body` under a subscriber's secret (WebSub
/// §7.1: `sha256=` and the hex HMAC).
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Sends each subscriber its claimed new entries, in one document per
/// subscriber, and records the outcome on every row.
#[allow(clippy::too_many_arguments)]
async fn distribute(
    store: &Store,
    config: &Config,
    resolve: TopicResolver,
    site: &Site,
    client: &reqwest::Client,
    subscriptions: &[HubSubscription],
    claimed: &[Delivery],
    clock: &Clock,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = claimed.iter().map(|d| d.article_id).collect();
    let articles: HashMap<i64, Article> = store
        .articles_by_id(&ids)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut by_recipient: HashMap<&str, Vec<&Delivery>> = HashMap::new();
    for delivery in claimed {
        by_recipient
            .entry(delivery.webhook.as_str())
            .or_default()
            .push(delivery);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (recipient, deliveries) in by_recipient {
        let subscription = recipient_subscription(recipient)
            .and_then(|id| subscriptions.iter().find(|s| s.id == id));
        let deliveries: Vec<Delivery> = deliveries.into_iter().cloned().collect();
        let Some(subscription) = subscription.cloned() else {
            let failure = || Failure::Final("the subscription's lease ended".into());
            record(
                store,
                config.websub.give_up_after,
                "distribution",
                &deliveries,
                Err(failure()),
                clock,
            )
            .await;
            continue;
        };
        let view = match resolve(config, &subscription.topic) {
            Ok(view) => view,
            Err(why) => {
                let failure = Failure::Final(format!("the topic is no longer served: {why}"));
                record(
                    store,
                    config.websub.give_up_after,
                    "distribution",
                    &deliveries,
                    Err(failure),
                    clock,
                )
                .await;
                continue;
            }
        };
        let mut entries: Vec<Article> = deliveries
            .iter()
            .filter_map(|d| articles.get(&d.article_id).cloned())
            .collect();
        // Newest first, as the feed itself.
        entries.sort_by(|a, b| b.published.cmp(&a.published).then(b.id.cmp(&a.id)));
        let body = publish::distribution(site, &view, &subscription.topic, &entries);
        let content_type = view.format.content_type();
        let hub = site.hub.clone().unwrap_or_default();
        let mut request = client
            .post(subscription.callback.as_str())
            .header("content-type", content_type)
            .header(
                "link",
                format!(
                    "<{hub}>; rel=\"hub\", <{}>; rel=\"self\"",
                    subscription.topic
                ),
            );
        if let Some(secret) = &subscription.secret {
            request = request.header("x-hub-signature", hub_signature(secret, body.as_bytes()));
        }
        let request = request.body(body);
        let (store, clock, timeout) = (store.clone(), clock.clone(), config.websub.timeout);
        let give_up_after = config.websub.give_up_after;
        tasks.spawn(async move {
            let outcome = match entries.is_empty() {
                true => Err(Failure::Final(
                    "the articles were pruned before they were distributed".into(),
                )),
                false => send(request, timeout).await,
            };
            record(
                &store,
                give_up_after,
                "distribution",
                &deliveries,
                outcome,
                &clock,
            )
            .await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// One publish ping to an external hub for the claimed new articles: every
/// feed of ours they changed, as `hub.url`s of one request.
async fn ping(
    store: &Store,
    config: &Config,
    site: &Site,
    client: &reqwest::Client,
    hub: &Url,
    claimed: &[Delivery],
    clock: &Clock,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = claimed.iter().map(|d| d.article_id).collect();
    let articles = store.articles_by_id(&ids).await?;
    let topics = changed_topics(config, site, &articles);
    let form = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("hub.mode", "publish");
        for topic in &topics {
            form.append_pair("hub.url", topic);
        }
        form.finish()
    };
    let outcome = match topics.is_empty() {
        true => Ok(()),
        false => {
            let request = client
                .post(hub.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
            send(request, config.websub.timeout).await
        }
    };
    let claimed: Vec<Delivery> = claimed.to_vec();
    record(
        store,
        config.websub.give_up_after,
        "ping",
        &claimed,
        outcome,
        clock,
    )
    .await;
    Ok(())
}

/// The feeds of ours that `articles` (new) changed: the merged views,
/// `/top`, each configured feed that holds one, each of their tags' feeds;
/// Atom and JSON Feed.
pub fn changed_topics(config: &Config, site: &Site, articles: &[Article]) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = BTreeSet::new();
    if !articles.is_empty() {
        paths.insert("/feed".into());
        paths.insert("/top".into());
    }
    for article in articles {
        let terms: Vec<&str> = article.tags.iter().map(|t| t.term.as_str()).collect();
        let sources: Vec<&str> = article.seen_in.iter().map(String::as_str).collect();
        for feed in &config.feeds {
            if feed
                .filter()
                .holds(&terms, &sources, article.language.as_deref())
            {
                paths.insert(format!(
                    "/feeds/{}",
                    crate::text::encode_segment(&feed.name)
                ));
            }
        }
        for term in terms {
            paths.insert(format!("/tags/{}", crate::text::encode_segment(term)));
        }
    }
    paths
        .iter()
        .flat_map(|path| {
            [Format::Atom, Format::Json]
                .map(|format| format!("{}{path}.{}", site.base_url, format.extension()))
        })
        .collect()
}

/// Writes one attempt's outcome on each of its outbox rows, and the
/// metrics.
async fn record(
    store: &Store,
    give_up_after: Duration,
    kind: &'static str,
    deliveries: &[Delivery],
    outcome: Result<(), Failure>,
    clock: &Clock,
) {
    let now = clock.now();
    crate::metrics::record_websub(kind, outcome.is_ok());
    let recipient = deliveries.first().map(|d| d.webhook.as_str());
    let error = match &outcome {
        Ok(()) => None,
        Err(Failure::Retry(e) | Failure::Final(e)) => Some(e),
    };
    match &error {
        None => tracing::info!(
            kind,
            recipient,
            entries = deliveries.len(),
            "websub delivered"
        ),
        Some(error) => tracing::warn!(kind, recipient, error = %error, "websub attempt failed"),
    }
    for delivery in deliveries {
        let written = match &outcome {
            Ok(()) => store.mark_delivered(delivery.id, now).await,
            Err(failure) => {
                let (error, retry_at) =
                    retry_or_give_up(failure.clone(), delivery, give_up_after, now);
                store.mark_failed(delivery.id, &error, now, retry_at).await
            }
        };
        if let Err(e) = written {
            // The lease runs out and the row is tried again.
            tracing::warn!(error = %e, "could not record a websub attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_sha256_hex_hmacs_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            hub_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
