//! The lease book: what topom knows of each proxy's slot-table stream (the
//! updates sent and their nonces, the revision applied, the lease, the last
//! NACK). Pure bookkeeping on tokio's clock, so tests can pause and advance time.
//!
//! A proxy's lease, on topom's side, runs [`expiry`] from the last message topom
//! *received* from it; the proxy counts its own `lease_ttl` from when it *sent*
//! that message. The barrier ([`super::proxies`]) relies on the difference: when
//! this book stops counting a silent proxy, that proxy has already fenced itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// What a proxy reports about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyReport {
    /// Commands served.
    pub ops_total: i64,
    /// Commands failed.
    pub ops_fails: i64,
    /// Backend errors.
    pub redis_errors: i64,
    /// Commands per second.
    pub ops_qps: i64,
    /// Sessions opened since start.
    pub sessions_total: i64,
    /// Sessions open now.
    pub sessions_alive: i64,
    /// Backend connections.
    pub backends: i64,
    /// Resident memory, bytes.
    pub rss_bytes: i64,
    /// CPU use.
    pub cpu: f64,
    /// When the proxy took the figures.
    pub time: Option<SystemTime>,
}

/// A proxy's live status, as shown to operators.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyStatus {
    /// Whether its lease is live.
    pub lease_live: bool,
    /// The highest revision it acknowledged.
    pub applied_revision: u64,
    /// When topom last heard from it.
    pub last_heartbeat: Option<SystemTime>,
    /// Its last NACK reason.
    pub last_nack: String,
    /// Whether a stream is open.
    pub connected: bool,
    /// Its last self-reported stats.
    pub report: Option<ProxyReport>,
    /// For a codis-proxy, what its driver last saw; `None` for topom proxies.
    pub driver: Option<DriverStatus>,
}

/// What the driver of a codis-proxy last saw of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverStatus {
    /// Whether its last admin call was answered (even with a refusal).
    pub reachable: bool,
    /// Whether it reported itself online (started) in its last stats.
    pub online: bool,
    /// The last failed call's error; empty once a call succeeds.
    pub last_error: String,
}

/// Why a barrier gave up on a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Laggard {
    /// The proxy's token.
    pub token: String,
    /// Its applied revision.
    pub applied: u64,
    /// Why it is behind.
    pub why: String,
}

#[derive(Debug, Default)]
struct Runtime {
    applied: u64,
    last_heard: Option<Instant>,
    /// The wall-clock twin of `last_heard`, for operators (a monotonic instant
    /// means nothing outside this process).
    last_heard_at: Option<SystemTime>,
    last_nack: String,
    streams: u32,
    /// Updates sent and not yet answered: revision → nonce.
    sent: BTreeMap<u64, String>,
    report: Option<ProxyReport>,
    /// Set by RemoveProxy: open streams end.
    removed: bool,
    /// Set by ReinitProxy: the next update is a full snapshot.
    reinit: bool,
    /// Set for a codis-proxy by its driver.
    driver: Option<DriverStatus>,
    /// Wakes this proxy's own streams (reinit, removal). Each stream waits on
    /// its proxy's alone: waking every stream on every proxy's message would
    /// cost N² wake-ups per heartbeat round with N proxies.
    wake: Arc<Notify>,
}

/// The live state of every proxy's stream.
#[derive(Debug)]
pub struct LeaseBook {
    ttl: Duration,
    state: Mutex<BTreeMap<String, Runtime>>,
    /// Bumped on every ack, nack or lease change, to wake barrier waiters.
    changed: watch::Sender<u64>,
    nonce: AtomicU64,
}

/// Updates kept per proxy: older ones can no longer be answered usefully.
const MAX_UNANSWERED: usize = 256;

impl LeaseBook {
    /// A book whose proxies must renew their lease every `ttl`.
    pub fn new(ttl: Duration) -> LeaseBook {
        LeaseBook {
            ttl,
            state: Mutex::new(BTreeMap::new()),
            changed: watch::channel(0).0,
            nonce: AtomicU64::new(1),
        }
    }

    /// Wakes on every change of any proxy's state.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Runtime>) -> T) -> T {
        // Every critical section leaves the map consistent, so poisoning is moot.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// A stream of `token` opened; returns the notifier of its wake-ups.
    pub fn opened(&self, token: &str) -> Arc<Notify> {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.streams += 1;
            r.removed = false;
            r.wake.clone()
        })
    }

    /// A stream of `token` closed.
    pub fn closed(&self, token: &str) {
        self.with(|s| {
            if let Some(r) = s.get_mut(token) {
                r.streams = r.streams.saturating_sub(1);
            }
        });
        self.bump();
    }

    /// `token` sent something: its lease is renewed from now.
    pub fn heard(&self, token: &str) {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.last_heard = Some(Instant::now());
            r.last_heard_at = Some(SystemTime::now());
        });
        self.bump();
    }

    /// A new leadership term begins: each of `tokens` (the stored proxies) may
    /// still hold a lease from the previous leader and serve its table, unseen
    /// by this book. Count each as live from now, having applied nothing of
    /// this term, so barriers wait until it re-syncs here or has surely fenced
    /// itself (one [`expiry`]); without this they pass at once on a new leader.
    pub fn new_term<'a>(&self, tokens: impl IntoIterator<Item = &'a String>) {
        let now = Instant::now();
        self.with(|s| {
            for t in tokens {
                let r = s.entry(t.clone()).or_default();
                r.applied = 0;
                r.sent.clear();
                r.last_heard = Some(now);
            }
        });
        self.bump();
    }

    /// Records an update of `revision` sent to `token` and returns the nonce its
    /// answer must echo.
    pub fn issue(&self, token: &str, epoch: &str, revision: u64) -> String {
        let n = self.nonce.fetch_add(1, Ordering::Relaxed);
        let nonce = format!("{epoch}-{revision}-{n}");
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.sent.insert(revision, nonce.clone());
            while r.sent.len() > MAX_UNANSWERED {
                r.sent.pop_first();
            }
        });
        nonce
    }

    /// An ACK (`nack` is `None`) or NACK of `revision`; ignored (false) unless
    /// `nonce` is the one sent with that revision to this proxy.
    pub fn answer(&self, token: &str, revision: u64, nonce: &str, nack: Option<&str>) -> bool {
        let ok = self.with(|s| {
            let Some(r) = s.get_mut(token) else {
                return false;
            };
            if r.sent.get(&revision).map(String::as_str) != Some(nonce) {
                return false;
            }
            r.sent.retain(|rev, _| *rev > revision);
            match nack {
                None => {
                    r.applied = r.applied.max(revision);
                    r.last_nack.clear();
                }
                Some(why) => r.last_nack = why.to_owned(),
            }
            true
        });
        if ok {
            self.bump();
        } else {
            tracing::warn!(
                proxy = token,
                revision,
                nonce,
                "answer to an update never sent (or stale nonce); ignored"
            );
        }
        ok
    }

    /// Keeps the proxy's latest self-reported stats.
    pub fn report(&self, token: &str, rep: ProxyReport) {
        self.with(|s| s.entry(token.to_owned()).or_default().report = Some(rep));
    }

    /// Whether RemoveProxy ended `token`'s streams.
    pub fn removed(&self, token: &str) -> bool {
        self.with(|s| s.get(token).is_some_and(|r| r.removed))
    }

    /// RemoveProxy: the lease ends now and every open stream of `token` ends.
    pub fn remove(&self, token: &str) {
        self.with(|s| {
            if let Some(r) = s.get_mut(token) {
                r.removed = true;
                r.last_heard = None;
                // Every open stream of it ends, and one not waiting right now
                // finds the stored permit.
                r.wake.notify_waiters();
                r.wake.notify_one();
            }
        });
        self.bump();
    }

    /// Drops everything known of `token` (a proxy added anew).
    pub fn forget(&self, token: &str) {
        self.with(|s| s.remove(token));
        self.bump();
    }

    /// ReinitProxy: the next update to `token` is a full snapshot.
    pub fn request_reinit(&self, token: &str) {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.reinit = true;
            r.wake.notify_one();
        });
        self.bump();
    }

    /// Whether a full snapshot was requested for `token` (clears the request).
    pub fn take_reinit(&self, token: &str) -> bool {
        self.with(|s| {
            s.get_mut(token)
                .is_some_and(|r| std::mem::take(&mut r.reinit))
        })
    }

    /// Whether `token` has a stream open.
    pub fn is_connected(&self, token: &str) -> bool {
        self.with(|s| s.get(token).is_some_and(|r| r.streams > 0))
    }

    /// Whether `token`'s lease is live.
    pub fn is_live(&self, token: &str) -> bool {
        self.with(|s| s.get(token).is_some_and(|r| self.live(r)))
    }

    /// `token`'s status for operators.
    pub fn status(&self, token: &str) -> ProxyStatus {
        self.with(|s| match s.get(token) {
            None => ProxyStatus {
                lease_live: false,
                applied_revision: 0,
                last_heartbeat: None,
                last_nack: String::new(),
                connected: false,
                report: None,
                driver: None,
            },
            Some(r) => ProxyStatus {
                lease_live: self.live(r),
                applied_revision: r.applied,
                last_heartbeat: r.last_heard_at,
                last_nack: r.last_nack.clone(),
                connected: r.streams > 0,
                report: r.report.clone(),
                driver: r.driver.clone(),
            },
        })
    }

    /// The proxies among `tokens` with a live lease that have not applied
    /// `revision`, each with why.
    pub fn laggards(&self, tokens: &[String], revision: u64) -> Vec<Laggard> {
        self.with(|s| {
            tokens
                .iter()
                .filter_map(|t| {
                    let r = s.get(t)?;
                    if !self.live(r) || r.applied >= revision {
                        return None;
                    }
                    let why = if !r.last_nack.is_empty() {
                        format!("rejected it: {}", r.last_nack)
                    } else if r.streams == 0 {
                        "disconnected, lease still live".to_owned()
                    } else {
                        "silent (no ack yet)".to_owned()
                    };
                    Some(Laggard {
                        token: t.clone(),
                        applied: r.applied,
                        why,
                    })
                })
                .collect()
        })
    }

    /// The codis-proxies among `tokens` that have not applied `revision`. No
    /// lease counts here: a codis-proxy cannot fence itself, so a barrier
    /// waits for it until it applies the revision or is removed.
    pub fn driven_laggards(&self, tokens: &[String], revision: u64) -> Vec<Laggard> {
        self.with(|s| {
            tokens
                .iter()
                .filter_map(|t| {
                    let (applied, why) = match s.get(t) {
                        Some(r) if r.removed => return None,
                        Some(r) if r.applied >= revision => return None,
                        Some(r) => (r.applied, driven_why(r.driver.as_ref())),
                        None => (0, driven_why(None)),
                    };
                    Some(Laggard {
                        token: t.clone(),
                        applied,
                        why,
                    })
                })
                .collect()
        })
    }

    /// The driver of codis-proxy `token` made a call: `Ok` when answered with
    /// success, else the error and whether the proxy answered at all.
    pub fn driven(&self, token: &str, outcome: Result<(), (String, bool)>) {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            let d = r.driver.get_or_insert_with(DriverStatus::default);
            match outcome {
                Ok(()) => {
                    d.reachable = true;
                    d.last_error.clear();
                    r.last_heard = Some(Instant::now());
                    r.last_heard_at = Some(SystemTime::now());
                }
                Err((e, answered)) => {
                    d.reachable = answered;
                    d.last_error = e;
                }
            }
        });
        self.bump();
    }

    /// The codis-proxy `token` reported whether it is online (started).
    pub fn driven_online(&self, token: &str, online: bool) {
        self.with(|s| {
            let r = s.entry(token.to_owned()).or_default();
            r.driver.get_or_insert_with(DriverStatus::default).online = online;
        });
    }

    /// When the first live lease among `tokens` runs out: leases expire without
    /// any message, so a waiter must wake by itself.
    pub fn next_expiry(&self, tokens: &[String]) -> Option<Instant> {
        let now = Instant::now();
        self.with(|s| {
            tokens
                .iter()
                .filter_map(|t| s.get(t)?.last_heard)
                .map(|h| h + expiry(self.ttl))
                .filter(|e| *e > now)
                .min()
        })
    }

    fn live(&self, r: &Runtime) -> bool {
        !r.removed && r.last_heard.is_some_and(|h| h.elapsed() < expiry(self.ttl))
    }
}

fn driven_why(d: Option<&DriverStatus>) -> String {
    match d {
        Some(d) if !d.last_error.is_empty() => {
            format!("codis-proxy, fillslots not applied: {}", d.last_error)
        }
        _ => "codis-proxy, fillslots not acknowledged yet".to_owned(),
    }
}

/// topom's side of a lease lasts `ttl` plus half of it: the proxy, counting from
/// when it sent the heartbeat, has fenced itself by then.
pub fn expiry(ttl: Duration) -> Duration {
    ttl + ttl / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn book_with(token: &str) -> LeaseBook {
        let b = LeaseBook::new(TTL);
        b.opened(token);
        b.heard(token);
        b
    }

    #[tokio::test(start_paused = true)]
    async fn an_ack_needs_the_nonce_sent_with_that_revision() {
        let b = book_with("p");
        let nonce = b.issue("p", "e", 7);
        let forged = format!("{nonce}x");
        assert!(!b.answer("p", 7, &forged, None), "wrong nonce accepted");
        assert!(!b.answer("p", 7, "", None), "empty nonce accepted");
        assert_eq!(b.status("p").applied_revision, 0);
        assert_eq!(b.laggards(&["p".into()], 7).len(), 1);
        assert!(b.answer("p", 7, &nonce, None));
        assert_eq!(b.status("p").applied_revision, 7);
        assert!(b.laggards(&["p".into()], 7).is_empty());
        // A nonce answers once: the revision is no longer outstanding.
        assert!(!b.answer("p", 7, &nonce, None));
    }

    #[tokio::test(start_paused = true)]
    async fn nonces_belong_to_one_proxy_and_one_revision() {
        let b = book_with("p");
        b.opened("q");
        b.heard("q");
        let for_p = b.issue("p", "e", 3);
        b.issue("q", "e", 3);
        assert!(!b.answer("q", 3, &for_p, None), "another proxy's nonce");
        assert!(!b.answer("p", 4, &for_p, None), "a revision never sent");
        assert!(!b.answer("ghost", 3, &for_p, None), "an unknown proxy");
        assert_eq!(b.status("q").applied_revision, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_nack_names_the_reason_and_an_ack_clears_it() {
        let b = book_with("p");
        let n = b.issue("p", "e", 2);
        assert!(b.answer("p", 2, &n, Some("bad slot 5")));
        let l = b.laggards(&["p".into()], 2);
        assert_eq!(l[0].why, "rejected it: bad slot 5");
        let n = b.issue("p", "e", 3);
        assert!(b.answer("p", 3, &n, None));
        assert_eq!(b.status("p").last_nack, "");
        assert_eq!(b.status("p").applied_revision, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_lasts_one_and_a_half_ttl_from_the_last_message() {
        let b = book_with("p");
        let tokens = ["p".to_owned()];
        let start = Instant::now();
        assert_eq!(b.next_expiry(&tokens), Some(start + TTL * 3 / 2));
        tokio::time::advance(TTL * 3 / 2 - Duration::from_millis(1)).await;
        assert!(b.is_live("p"));
        assert_eq!(b.laggards(&tokens, 1).len(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!b.is_live("p"), "lease still live after 1.5 ttl");
        assert!(b.laggards(&tokens, 1).is_empty());
        assert_eq!(b.next_expiry(&tokens), None);
        // A heartbeat renews it.
        b.heard("p");
        assert!(b.is_live("p"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_removed_proxy_has_no_lease_and_its_streams_are_woken() {
        let b = LeaseBook::new(TTL);
        let wake = b.opened("p");
        b.heard("p");
        b.remove("p");
        assert!(!b.is_live("p"));
        assert!(b.removed("p"));
        // The stored permit: a stream not waiting at the moment still sees it.
        tokio::time::timeout(Duration::from_millis(1), wake.notified())
            .await
            .expect("stream not woken");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_term_waits_for_proxies_it_has_not_heard_yet() {
        // Proxies another leader served: this book has never heard of them.
        let b = LeaseBook::new(TTL);
        let tokens = ["p".to_owned(), "q".to_owned()];
        assert!(b.laggards(&tokens, 1).is_empty());
        b.new_term(&tokens);
        assert_eq!(b.laggards(&tokens, 1).len(), 2);
        // One re-syncs here; the other stays away until its lease surely ran out.
        let n = b.issue("p", "e2", 1);
        assert!(b.answer("p", 1, &n, None));
        assert_eq!(b.laggards(&tokens, 1).len(), 1);
        tokio::time::advance(expiry(TTL)).await;
        assert!(b.laggards(&tokens, 1).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_term_forgets_what_was_applied_in_the_last_one() {
        let b = book_with("p");
        let n = b.issue("p", "e1", 9);
        assert!(b.answer("p", 9, &n, None));
        b.new_term(&["p".to_owned()]);
        assert_eq!(
            b.laggards(&["p".into()], 2).len(),
            1,
            "revision 9 of the old epoch counted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_codis_proxy_is_waited_for_whatever_its_lease() {
        let b = LeaseBook::new(TTL);
        let tokens = ["c".to_owned()];
        // Never heard of, silent for ages: still behind, never dropped.
        assert_eq!(b.driven_laggards(&tokens, 1).len(), 1);
        b.driven("c", Err(("no answer within 5s".into(), false)));
        tokio::time::advance(expiry(TTL) * 10).await;
        let l = b.driven_laggards(&tokens, 1);
        assert_eq!(l.len(), 1);
        assert_eq!(
            l[0].why,
            "codis-proxy, fillslots not applied: no answer within 5s"
        );
        // Its fillslots of revision 1 succeeded: that is its ACK.
        let n = b.issue("c", "e", 1);
        assert!(b.answer("c", 1, &n, None));
        assert!(b.driven_laggards(&tokens, 1).is_empty());
        assert_eq!(b.driven_laggards(&tokens, 2).len(), 1);
        // Only removal lets a barrier go on without it.
        b.remove("c");
        assert!(b.driven_laggards(&tokens, 2).is_empty());
        b.forget("c");
        assert_eq!(b.driven_laggards(&tokens, 2).len(), 1, "a re-added one");
    }

    #[tokio::test(start_paused = true)]
    async fn old_unanswered_updates_are_forgotten() {
        let b = book_with("p");
        let first = b.issue("p", "e", 1);
        for rev in 2..=(MAX_UNANSWERED as u64 + 1) {
            b.issue("p", "e", rev);
        }
        assert!(!b.answer("p", 1, &first, None));
    }
}
