//! What time it is, injected: the daemon reads the system clock; tests use
//! a clock they set and move forward, so that "a day later" or "past the
//! retention" needs no sleep. Durations (timeouts, how long a fetch took)
//! are measured with `Instant`/tokio time, not with this.
//!
//! Not from this clock, on purpose: the times the database stamps itself
//! (`changed_at`, `removed_at`, the store's `created_at`: a view's
//! Last-Modified, which every instance must agree on), whether a schedule
//! ever fires (checked once, when the config is read), and the binary's
//! own commands (`tributary sources`, `prune`, `opml`), which run now.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::{Arc, Mutex, PoisonError};

/// A source of the current time, cheap to clone (clones share the time).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock.
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `start` until it is set or advanced.
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(time) => *time.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Moves a manual clock forward by `by`; the system clock moves itself.
    pub fn advance(&self, by: TimeDelta) {
        if let Some(time) = &self.manual {
            *time.lock().unwrap_or_else(PoisonError::into_inner) += by;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_its_clones_follow() {
        let start = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::manual(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        clock.advance(TimeDelta::days(2));
        assert_eq!(shared.now(), start + TimeDelta::days(2));
        let system = Clock::system().now();
        assert!((system - Utc::now()).num_seconds().abs() < 5);
    }
}
