//! Counting what we send: requests, sequential round trips, and retries by cause.
//!
//! The performance goal (a fresh tenant in at most 12 requests and 7 sequential round trips
//! after sign-in; the 7th is verification's reads with the new tokens) is checked by counting
//! here, in the client, rather than guessed.
//! A round trip starts whenever a request goes out while none is in flight: concurrent
//! requests (a `$batch`, the two verification tokens) share one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub struct RequestMeter {
    requests: AtomicU32,
    round_trips: AtomicU32,
    in_flight: AtomicU32,
    replication_retries: AtomicU32,
    throttle_retries: AtomicU32,
    other_retries: AtomicU32,
    writes: AtomicU32,
    /// Open [`RequestMeter::concurrently`] groups.
    groups: AtomicU32,
}

/// Why a request is a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    First,
    /// Microsoft's directory had not replicated an object we just made.
    Replication,
    /// 429, 503 or 504.
    Throttled,
    /// A new credential not yet usable, a network blip.
    Other,
}

/// A snapshot of the meter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStats {
    /// Requests sent, first attempts only.
    pub requests: u32,
    /// Sequential round trips (first attempts only).
    pub round_trips: u32,
    /// Requests (or `$batch` items) that changed something in the tenant.
    pub writes: u32,
    pub replication_retries: u32,
    pub throttle_retries: u32,
    pub other_retries: u32,
}

/// Ends an in-flight request when dropped.
pub struct InFlight(Arc<RequestMeter>);

/// See [`RequestMeter::concurrently`].
pub struct Group(Arc<RequestMeter>);

impl Drop for Group {
    fn drop(&mut self) {
        self.0.groups.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RequestMeter {
    pub fn new() -> Arc<RequestMeter> {
        Arc::new(RequestMeter::default())
    }

    /// Marks a request as sent; hold the guard until its answer is read.
    pub fn start(self: &Arc<Self>, attempt: Attempt) -> InFlight {
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        match attempt {
            Attempt::First => {
                self.requests.fetch_add(1, Ordering::SeqCst);
                if before == 0 && self.groups.load(Ordering::SeqCst) == 0 {
                    self.round_trips.fetch_add(1, Ordering::SeqCst);
                }
            }
            Attempt::Replication => {
                self.replication_retries.fetch_add(1, Ordering::SeqCst);
            }
            Attempt::Throttled => {
                self.throttle_retries.fetch_add(1, Ordering::SeqCst);
            }
            Attempt::Other => {
                self.other_retries.fetch_add(1, Ordering::SeqCst);
            }
        }
        InFlight(self.clone())
    }

    /// Declares that the requests made until the guard drops are sent together (one round
    /// trip), so a fast answer to one of them cannot make the next look sequential.
    pub fn concurrently(self: &Arc<Self>) -> Group {
        if self.groups.fetch_add(1, Ordering::SeqCst) == 0 {
            self.round_trips.fetch_add(1, Ordering::SeqCst);
        }
        Group(self.clone())
    }

    pub fn wrote(&self, n: u32) {
        self.writes.fetch_add(n, Ordering::SeqCst);
    }

    /// Notes that a look-up is being repeated because what it looked for had not replicated
    /// yet (the repeated request itself is also counted as a request).
    pub fn note_replication_retry(&self) {
        self.replication_retries.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn unwrite(&self, n: u32) {
        self.writes.fetch_sub(n, Ordering::SeqCst);
    }

    pub fn stats(&self) -> RequestStats {
        RequestStats {
            requests: self.requests.load(Ordering::SeqCst),
            round_trips: self.round_trips.load(Ordering::SeqCst),
            writes: self.writes.load(Ordering::SeqCst),
            replication_retries: self.replication_retries.load(Ordering::SeqCst),
            throttle_retries: self.throttle_retries.load(Ordering::SeqCst),
            other_retries: self.other_retries.load(Ordering::SeqCst),
        }
    }
}

/// An azure_core transport that counts through a meter (the verification tokens).
#[derive(Debug)]
pub struct MeteredTransport {
    pub inner: crate::http::AzureTransport,
    pub meter: Arc<RequestMeter>,
    /// Set once the first attempt was refused: later requests count as retries.
    pub retrying: std::sync::atomic::AtomicBool,
    /// The authority's path, when `HAL_ONBOARD_LOGIN_URL` has one (e.g. a sign-in service
    /// behind a proxy under `/login`; Microsoft's hosts and the sandbox have none). azure_identity
    /// joins `/{tenant}/oauth2/v2.0/token` to the authority host with a leading slash, which
    /// drops any path; requests that lost it get it back here.
    pub authority_path: String,
}

#[async_trait::async_trait]
impl azure_core::http::HttpClient for MeteredTransport {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        let attempt = if self.retrying.load(Ordering::SeqCst) {
            Attempt::Other
        } else {
            Attempt::First
        };
        let _g = self.meter.start(attempt);
        let prefix = self.authority_path.trim_end_matches('/');
        if !prefix.is_empty() && !request.url().path().starts_with(prefix) {
            let mut r = request.clone();
            let p = format!("{prefix}{}", r.url().path());
            r.url_mut().set_path(&p);
            return self.inner.execute_request(&r).await;
        }
        self.inner.execute_request(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_requests_share_a_round_trip() {
        let m = RequestMeter::new();
        {
            let _a = m.start(Attempt::First);
            let _b = m.start(Attempt::First);
        }
        drop(m.start(Attempt::First));
        drop(m.start(Attempt::Replication));
        let s = m.stats();
        assert_eq!(
            (s.requests, s.round_trips, s.replication_retries),
            (3, 2, 1)
        );
    }
}
