//! Test-only fault injection (compiled into unit tests only): a test arms a
//! named point, and the code passing it with a matching key panics, so
//! that the supervision of the daemon's tasks is tested on a real daemon
//! (app.rs) without an input that crashes tributary. See `fault_point!`.

use std::sync::Mutex;

/// Armed points: (point, key, panics left).
static ARMED: Mutex<Vec<(&'static str, String, usize)>> = Mutex::new(Vec::new());

/// Makes the next `times` passes of `point` with `key` panic.
pub fn arm(point: &'static str, key: &str, times: usize) {
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    armed.push((point, key.to_string(), times));
}

pub fn hit(point: &'static str, key: &str) {
    let fire = {
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        match armed
            .iter_mut()
            .find(|a| a.0 == point && a.1 == key && a.2 > 0)
        {
            Some(a) => {
                a.2 -= 1;
                true
            }
            None => false,
        }
    };
    if fire {
        panic!("fault injected at {point}");
    }
}
