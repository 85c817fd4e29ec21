//! The migration throttle: at most N keys and M bytes a second for a whole
//! slot-action engine, every pass and every source together. Both migrators
//! take a batch's [`Cost`] from it before sending the batch.
//!
//! Each limit is a token bucket that holds one second's worth of tokens
//! ([`BURST`]). A take draws its whole cost at once, even more than the bucket
//! holds, and is let through once the bucket is no longer in debt: so a batch
//! larger than a second's worth still goes (after `(cost - burst) / rate`)
//! instead of waiting for a bucket that can never hold it, and whatever the
//! batch sizes, the traffic of any window of `W` seconds stays within
//! `burst + rate × W`. Takes are served in the order they draw: a big batch is
//! not starved by small ones arriving after it.
//!
//! A bucket keeps no token count refilled by a timer, only the instant its
//! debt is paid and it is full again (`full_at`): drawing `n` tokens moves it
//! `n / rate` later, and a take may go when `full_at - BURST` has passed.
//!
//! A take dropped while it waits (its pass cancelled) gives its tokens back:
//! the batch was never sent.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How much traffic a full bucket lets through at once: one second's worth.
pub const BURST: Duration = Duration::from_secs(1);

/// A debt so large that its end is past the clock's range is held to this.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a batch costs: its keys and their estimated size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Keys in the batch.
    pub keys: u64,
    /// Their estimated size in bytes (`MEMORY USAGE` on plain Redis).
    pub bytes: u64,
}

/// The configured rates; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Keys per second (`migration_max_keys_per_sec`).
    pub keys_per_sec: u64,
    /// Bytes per second (`migration_max_bytes_per_sec`).
    pub bytes_per_sec: u64,
}

impl Limits {
    /// Whether either rate is limited.
    pub fn is_limited(self) -> bool {
        self.keys_per_sec > 0 || self.bytes_per_sec > 0
    }
}

/// A shared throttle: clones draw from the same buckets. The default lets
/// everything through at once.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    limits: Limits,
    /// `None` when unlimited: a take then costs no lock.
    buckets: Option<Arc<Mutex<Buckets>>>,
}

impl Throttle {
    /// A throttle with these rates, its buckets full.
    pub fn new(limits: Limits) -> Throttle {
        let now = Instant::now();
        let bucket = |rate: u64| (rate > 0).then_some(Bucket { rate, full_at: now });
        Throttle {
            limits,
            buckets: limits.is_limited().then(|| {
                Arc::new(Mutex::new(Buckets {
                    keys: bucket(limits.keys_per_sec),
                    bytes: bucket(limits.bytes_per_sec),
                    waiting: 0,
                }))
            }),
        }
    }

    /// The rates it enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes waiting for tokens now: a pass that moves nothing while this is
    /// above 0 is held by the limit, not stalled.
    pub fn waiting(&self) -> usize {
        self.buckets.as_ref().map_or(0, |b| lock(b).waiting)
    }

    /// Draws `cost` and waits until the buckets are out of debt. Cancel-safe:
    /// dropped while waiting, it gives `cost` back.
    pub async fn take(&self, cost: Cost) {
        let Some(buckets) = &self.buckets else {
            return;
        };
        let ready = {
            let mut b = lock(buckets);
            let ready = b.draw(cost, Instant::now());
            if ready <= Instant::now() {
                return;
            }
            b.waiting += 1;
            ready
        };
        let mut waiter = Waiter {
            buckets,
            unsent: Some(cost),
        };
        tokio::time::sleep_until(ready).await;
        waiter.unsent = None;
    }

    /// Corrects a take whose cost was an estimate (codis-server says how many
    /// keys a call moved only once it returns): the difference is drawn, or
    /// given back, without waiting; the next take pays a shortfall.
    pub fn settle(&self, taken: Cost, actual: Cost) {
        let Some(buckets) = &self.buckets else {
            return;
        };
        let mut b = lock(buckets);
        let now = Instant::now();
        if let Some(k) = &mut b.keys {
            k.settle(taken.keys, actual.keys, now);
        }
        if let Some(k) = &mut b.bytes {
            k.settle(taken.bytes, actual.bytes, now);
        }
    }
}

/// The bucket of each limited rate.
#[derive(Debug)]
struct Buckets {
    keys: Option<Bucket>,
    bytes: Option<Bucket>,
    /// Takes sleeping until their tokens are earned.
    waiting: usize,
}

impl Buckets {
    /// Draws `cost` from both; when the take may go.
    fn draw(&mut self, cost: Cost, now: Instant) -> Instant {
        let keys = self.keys.as_mut().map(|b| b.draw(cost.keys, now));
        let bytes = self.bytes.as_mut().map(|b| b.draw(cost.bytes, now));
        keys.into_iter().chain(bytes).max().unwrap_or(now)
    }

    fn refund(&mut self, cost: Cost) {
        if let Some(b) = &mut self.keys {
            b.refund(cost.keys);
        }
        if let Some(b) = &mut self.bytes {
            b.refund(cost.bytes);
        }
    }
}

/// One token bucket (see the module docs).
#[derive(Debug)]
struct Bucket {
    /// Tokens per second, at least 1.
    rate: u64,
    /// When the bucket is full again; in the past, it is full.
    full_at: Instant,
}

impl Bucket {
    /// Draws `n` tokens; when the bucket is out of debt again.
    fn draw(&mut self, n: u64, now: Instant) -> Instant {
        // A bucket full since long ago holds one burst, no more.
        let from = self.full_at.max(now);
        let d = self.time_of(n);
        self.full_at = from
            .checked_add(d)
            .or_else(|| from.checked_add(FAR))
            .unwrap_or(from);
        self.full_at.checked_sub(BURST).unwrap_or(now)
    }

    fn refund(&mut self, n: u64) {
        if let Some(t) = self.full_at.checked_sub(self.time_of(n)) {
            self.full_at = t;
        }
    }

    fn settle(&mut self, taken: u64, actual: u64, now: Instant) {
        if actual > taken {
            self.draw(actual - taken, now);
        } else {
            self.refund(taken - actual);
        }
    }

    /// How long the rate takes to earn `n` tokens, rounded up so that a
    /// run of small takes never beats the rate.
    fn time_of(&self, n: u64) -> Duration {
        let nanos = (u128::from(n) * 1_000_000_000).div_ceil(u128::from(self.rate));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// A take sleeping for its tokens; dropped before it went (cancelled), it
/// gives them back.
struct Waiter<'a> {
    buckets: &'a Mutex<Buckets>,
    /// `None` once the take went.
    unsent: Option<Cost>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut b = lock(self.buckets);
        b.waiting = b.waiting.saturating_sub(1);
        if let Some(cost) = self.unsent {
            b.refund(cost);
        }
    }
}

/// Every critical section is a few additions: a panicking holder leaves the
/// buckets usable.
fn lock(m: &Mutex<Buckets>) -> MutexGuard<'_, Buckets> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u64) -> Cost {
        Cost { keys: n, bytes: 0 }
    }

    fn per_sec(keys_per_sec: u64, bytes_per_sec: u64) -> Throttle {
        Throttle::new(Limits {
            keys_per_sec,
            bytes_per_sec,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn takes_follow_the_rate_after_the_first_burst() {
        let t = per_sec(100, 0);
        let start = Instant::now();
        for _ in 0..100 {
            t.take(keys(10)).await;
        }
        // 1000 keys at 100/s, the first 100 free: 9 s, to the tick.
        assert_eq!(start.elapsed(), Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_holds_one_second_however_long_it_idled() {
        let t = per_sec(100, 0);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        t.take(keys(100)).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "one burst goes at once");
        t.take(keys(1)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(10), "then the rate");
        for _ in 0..99 {
            t.take(keys(1)).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_bigger_than_the_bucket_goes_and_its_debt_is_paid() {
        let t = per_sec(100, 0);
        let start = Instant::now();
        // Three seconds' worth: it owes two, then goes.
        t.take(keys(300)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        // The next take waits for its own tokens on top of that debt.
        t.take(keys(50)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(2500));
    }

    #[tokio::test(start_paused = true)]
    async fn the_slower_of_the_two_rates_sets_the_pace() {
        let t = per_sec(1000, 1 << 20);
        let start = Instant::now();
        // 10 keys of 512 KiB: the bytes bucket owes 4 MiB.
        t.take(Cost {
            keys: 10,
            bytes: 5 << 20,
        })
        .await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        let t = per_sec(10, 1 << 30);
        let start = Instant::now();
        t.take(Cost {
            keys: 30,
            bytes: 30,
        })
        .await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_take_gives_its_tokens_back() {
        let t = per_sec(100, 0);
        let start = Instant::now();
        t.take(keys(100)).await;
        // Would wait 2 s; its pass is cancelled after 100 ms.
        let waiting = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            t.waiting()
        };
        let cancelled = tokio::time::timeout(Duration::from_millis(100), t.take(keys(200)));
        let (waited, seen) = tokio::join!(cancelled, waiting);
        assert!(waited.is_err(), "it was still waiting");
        assert_eq!(seen, 1, "counted as waiting");
        assert_eq!(t.waiting(), 0, "no longer once cancelled");
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        // The 200 keys were never sent: only the first 100 count, so one
        // more key goes at once (it would wait until 2.01 s otherwise).
        t.take(keys(1)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn an_estimate_is_settled_without_waiting() {
        let t = per_sec(100, 0);
        let start = Instant::now();
        t.take(keys(100)).await;
        // Took 100, moved 20: 80 given back, so 80 more go at once.
        t.settle(keys(100), keys(20));
        t.take(keys(80)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // Took 0, moved 100: the next take pays it.
        t.settle(keys(0), keys(100));
        t.take(keys(1)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(1010));
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let t = Throttle::default();
        assert!(!t.limits().is_limited());
        let start = Instant::now();
        t.take(Cost {
            keys: u64::MAX,
            bytes: u64::MAX,
        })
        .await;
        t.settle(Cost::default(), Cost { keys: 1, bytes: 1 });
        assert_eq!(start.elapsed(), Duration::ZERO);
        // A limit on one rate leaves the other free.
        let t = per_sec(0, 1000);
        t.take(Cost {
            keys: u64::MAX,
            bytes: 1000,
        })
        .await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_takes_share_one_rate_in_order() {
        let t = per_sec(100, 0);
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        t.take(keys(10)).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        // 400 keys from four clones of one throttle: (400 - 100) / 100.
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn a_huge_debt_does_not_overflow_the_clock() {
        let mut b = Bucket {
            rate: 1,
            full_at: Instant::now(),
        };
        let now = Instant::now();
        let ready = b.draw(u64::MAX, now);
        assert!(ready > now);
        b.refund(u64::MAX);
    }
}
