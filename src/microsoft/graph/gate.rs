//! Retry-After shared across Graph clients: `tenant add --partner` runs several customers at
//! once with one app and one technician, so a `429` answered to one of them means the
//! requests of the others are next in line for it. Microsoft asks a throttled client to wait
//! the `Retry-After` before *any* further request ("Microsoft Graph throttling guidance":
//! "wait the number of seconds specified in the Retry-After header"; limits also count per app
//! across all tenants), so the wait is honoured by every job, not only by the one that got it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Shared by every Graph client of a batch (`Arc<ThrottleGate>`): closed until the latest
/// `Retry-After` any of them was given has passed.
#[derive(Debug, Default)]
pub struct ThrottleGate {
    open_at: Mutex<Option<Instant>>,
    /// Requests that waited at the gate for another's `Retry-After` (for `-v` and tests).
    held_back: AtomicU64,
}

impl ThrottleGate {
    pub fn new() -> ThrottleGate {
        ThrottleGate::default()
    }

    /// A server asked for `wait`: no request through this gate goes out before it has passed.
    pub fn hold(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut open = self.open_at.lock().unwrap_or_else(|e| e.into_inner());
        if open.is_none_or(|t| t < until) {
            *open = Some(until);
        }
    }

    /// How long a request sent now would have to wait (zero when the gate is open).
    pub fn remaining(&self) -> Duration {
        let open = self.open_at.lock().unwrap_or_else(|e| e.into_inner());
        open.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }

    /// Waits until the gate is open; how long that was (zero: it was open). A hold made while
    /// waiting is waited out too.
    pub async fn pass(&self) -> Duration {
        let start = Instant::now();
        let mut counted = false;
        loop {
            let left = self.remaining();
            if left.is_zero() {
                return if counted {
                    start.elapsed()
                } else {
                    Duration::ZERO
                };
            }
            if !counted {
                self.held_back.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            tokio::time::sleep(left).await;
        }
    }

    /// Requests held back so far by another client's `Retry-After`.
    pub fn held_back(&self) -> u64 {
        self.held_back.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_are_shared_and_the_longest_wins() {
        let g = std::sync::Arc::new(ThrottleGate::new());
        assert_eq!(g.pass().await, Duration::ZERO, "open at first");
        g.hold(Duration::from_millis(300));
        g.hold(Duration::from_millis(50)); // a shorter one does not shorten it
        let other = g.clone();
        let t = Instant::now();
        let waited = tokio::spawn(async move { other.pass().await })
            .await
            .unwrap();
        assert!(waited >= Duration::from_millis(290), "{waited:?}");
        assert!(t.elapsed() >= Duration::from_millis(290));
        assert_eq!(g.held_back(), 1);
        assert_eq!(g.pass().await, Duration::ZERO, "open again");
    }
}
