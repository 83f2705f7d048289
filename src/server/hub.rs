//! `POST /websub/hub` (docs/HTTP.md "WebSub hub"): subscription requests
//! to tributary's own hub (`[websub] hub = "self"`), checked here and
//! answered 202; `crate::hub` verifies the intent and keeps the
//! subscription.

use super::{topic_view, AppState};
use crate::config::HubMode;
use crate::hub::{self, Intent};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use std::sync::Arc;

/// The largest request body: a callback, a topic and a secret fit many
/// times over.
const BODY_LIMIT: usize = 16 << 10;
/// The longest callback and topic URLs taken.
const URL_LIMIT: usize = 2048;
/// WebSub §5.1: a secret is less than 200 bytes.
const SECRET_LIMIT: usize = 200;

pub(super) fn route() -> MethodRouter<Arc<AppState>> {
    post(subscription).layer(DefaultBodyLimit::max(BODY_LIMIT))
}

async fn subscription(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    if !matches!(state.config.websub.hub, Some(HubMode::Itself)) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    match intent(&state, &body).await {
        Ok(intent) => {
            let queued = hub::verify_later(
                state.store.clone(),
                state.config.clone(),
                topic_view,
                intent,
                state.clock.clone(),
            );
            match queued {
                true => (StatusCode::ACCEPTED, "accepted; verifying the intent\n").into_response(),
                false => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "10")],
                    "too many verifications in flight; try again later\n",
                )
                    .into_response(),
            }
        }
        Err((status, why)) => (status, format!("{why}\n")).into_response(),
    }
}

/// The request's parameters, checked: what is wrong is a 4xx saying so.
async fn intent(state: &AppState, body: &[u8]) -> Result<Intent, (StatusCode, String)> {
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let mut mode = None;
    let mut callback = None;
    let mut topic = None;
    let mut secret = None;
    let mut lease = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "hub.mode" => &mut mode,
            "hub.callback" => &mut callback,
            "hub.topic" => &mut topic,
            "hub.secret" => &mut secret,
            "hub.lease_seconds" => &mut lease,
            // Other parameters are extensions this hub does not take.
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(bad(format!("{key} given twice")));
        }
    }
    let subscribe = match mode.as_deref() {
        Some("subscribe") => true,
        Some("unsubscribe") => false,
        _ => return Err(bad("hub.mode must be subscribe or unsubscribe".into())),
    };
    let callback = callback.ok_or_else(|| bad("hub.callback is missing".into()))?;
    if callback.len() > URL_LIMIT {
        return Err(bad(format!(
            "hub.callback is longer than {URL_LIMIT} bytes"
        )));
    }
    let callback = url::Url::parse(&callback)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .filter(|u| u.fragment().is_none())
        .ok_or_else(|| bad("hub.callback must be an absolute http or https URL".into()))?;
    let topic = topic.ok_or_else(|| bad("hub.topic is missing".into()))?;
    if topic.len() > URL_LIMIT {
        return Err(bad(format!("hub.topic is longer than {URL_LIMIT} bytes")));
    }
    let view = topic_view(&state.config, &topic).map_err(bad)?;
    if state.site.hub_for(&view).is_none() {
        return Err(bad(
            "coverage views (/top, min_outlets) rank stories rather than add them: \
             this hub distributes new entries, so it takes other views as topics"
                .into(),
        ));
    }
    if secret.as_ref().is_some_and(|s| s.len() >= SECRET_LIMIT) {
        return Err(bad(format!(
            "hub.secret must be shorter than {SECRET_LIMIT} bytes"
        )));
    }
    let websub = &state.config.websub;
    let lease_seconds = match lease {
        None => websub.lease.as_secs(),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| bad(format!("hub.lease_seconds must be a number, not {text:?}")))?
            // WebSub §5.1: the hub picks the lease it grants.
            .clamp(60, websub.max_lease.as_secs()),
    };
    if subscribe {
        let now = state.clock.now();
        let (renewal, count) = state
            .store
            .subscription_count(&topic, callback.as_str(), now)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "websub subscription count failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            })?;
        let max = websub.max_subscriptions;
        if !renewal && usize::try_from(count).unwrap_or(usize::MAX) >= max {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("this hub holds its maximum of {max} subscriptions"),
            ));
        }
        hub::check_callback(&callback, websub.private_callbacks)
            .await
            .map_err(bad)?;
    }
    Ok(Intent {
        subscribe,
        topic,
        callback,
        secret: secret.filter(|s| !s.is_empty()),
        lease_seconds: i64::try_from(lease_seconds).unwrap_or(i64::MAX),
    })
}
