//! When a source is fetched next: its cron schedule's next tick, spread per
//! source; backoff after failures; the floor that cache headers and RSS
//! `<ttl>` set. Pure rules over times the caller passes in: the pipeline
//! applies them after each refresh, the scheduler claims what they made due.

use crate::config::Schedule;
use crate::store::PollFloor;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Longest a failing source waits between tries, and longest a cache header
/// may push the next fetch out (docs/CONFIG.md "Fetching").
const MAX_DELAY: TimeDelta = TimeDelta::days(1);

/// The next tick of `schedule` after `now`, shifted by a per-source offset
/// so that sources sharing a schedule do not all start in the same second.
pub fn next_tick(schedule: &Schedule, source: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let Some(tick) = schedule.next_after(now) else {
        return now + MAX_DELAY;
    };
    let period = schedule
        .next_after(tick)
        .map(|t| t - tick)
        .unwrap_or(MAX_DELAY);
    // Spread over at most half the period (so a tick is never skipped) and at
    // most a minute (so a fetch stays close to what the schedule says).
    let window = (period / 2).min(TimeDelta::minutes(1));
    tick + scale(window, spread_fraction(source))
}

/// When a source that failed `failures` times in a row may be tried again:
/// one schedule period doubled per failure, capped at a day, with ±10%
/// jitter so that many failing sources do not retry in lockstep.
pub fn backoff_until(schedule: &Schedule, now: DateTime<Utc>, failures: i64) -> DateTime<Utc> {
    let period = schedule
        .next_after(now)
        .and_then(|a| schedule.next_after(a).map(|b| b - a))
        .unwrap_or(MAX_DELAY)
        .max(TimeDelta::seconds(1));
    let doublings = failures.clamp(1, 32) - 1;
    let delay = period
        .checked_mul(1i32 << doublings.min(30))
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY);
    let jitter = 0.9 + 0.2 * rand::random::<f64>();
    now + scale(delay, jitter).min(MAX_DELAY)
}

/// Raises `next` to what the server asked for (`Cache-Control: max-age`,
/// `Expires`, RSS `<ttl>`), never beyond a day from now.
pub fn apply_cache_floor(
    next: DateTime<Utc>,
    now: DateTime<Utc>,
    floor: &PollFloor,
) -> DateTime<Utc> {
    let to_delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(MAX_DELAY).min(MAX_DELAY);
    let floors = [
        floor.max_age.map(|d| now + to_delta(d)),
        floor.ttl.map(|d| now + to_delta(d)),
    ];
    floors.into_iter().flatten().fold(next, DateTime::max)
}

fn spread_fraction(source: &str) -> f64 {
    let digest = Sha256::digest(source.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

fn scale(delta: TimeDelta, factor: f64) -> TimeDelta {
    TimeDelta::microseconds((delta.num_microseconds().unwrap_or(i64::MAX) as f64 * factor) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn next_tick_is_spread_within_half_a_period_and_a_minute() {
        let every_15_min = Schedule::parse("*/15 * * * *").unwrap();
        let now = at("2026-11-28T10:01:00Z");
        let tick = at("2026-11-28T10:15:00Z");
        let mut offsets = std::collections::HashSet::new();
        for i in 0..50 {
            let next = next_tick(&every_15_min, &format!("source-{i}"), now);
            assert!(
                next >= tick && next < tick + TimeDelta::minutes(1),
                "{next}"
            );
            offsets.insert(next);
        }
        assert!(
            offsets.len() > 40,
            "sources should not share a start second"
        );

        let every_second = Schedule::parse("* * * * * *").unwrap();
        let next = next_tick(&every_second, "a", now);
        assert!(
            next > now && next < now + TimeDelta::milliseconds(1500),
            "{next}"
        );
    }

    #[test]
    fn next_tick_is_stable_for_one_source() {
        let schedule = Schedule::parse("*/10 * * * *").unwrap();
        let now = at("2026-11-28T10:01:00Z");
        assert_eq!(
            next_tick(&schedule, "rfi-en", now),
            next_tick(&schedule, "rfi-en", now)
        );
    }

    #[test]
    fn backoff_doubles_per_failure_and_caps_at_a_day() {
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let now = at("2026-11-28T10:00:00Z");
        let cases = [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (4, 8.0),
            (6, 24.0),
            (40, 24.0),
        ];
        for (failures, hours) in cases {
            let delay = (backoff_until(&hourly, now, failures) - now).num_seconds() as f64 / 3600.0;
            let expected = if hours >= 24.0 { 24.0 } else { hours };
            assert!(
                delay >= expected * 0.9 - 1e-9 && delay <= (expected * 1.1).min(24.0) + 1e-9,
                "failures {failures}: {delay}h, expected about {expected}h"
            );
        }
    }

    #[test]
    fn cache_headers_and_ttl_raise_the_next_fetch_up_to_a_day() {
        let now = at("2026-11-28T10:00:00Z");
        let next = now + TimeDelta::minutes(1);
        let floor = |ttl: Option<u64>, max_age: Option<u64>| PollFloor {
            ttl: ttl.map(Duration::from_secs),
            max_age: max_age.map(Duration::from_secs),
        };
        assert_eq!(apply_cache_floor(next, now, &floor(None, None)), next);
        assert_eq!(
            apply_cache_floor(next, now, &floor(None, Some(600))),
            now + TimeDelta::minutes(10)
        );
        assert_eq!(
            apply_cache_floor(next, now, &floor(Some(3600), Some(600))),
            now + TimeDelta::hours(1)
        );
        assert_eq!(
            apply_cache_floor(next, now, &floor(None, Some(30 * 86_400))),
            now + TimeDelta::days(1)
        );
    }
}
