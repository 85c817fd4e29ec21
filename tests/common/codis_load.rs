//! A checked load through codis-proxies, and where keys live afterwards: what
//! the codis-proxy tests and the adoption test assert on real servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use topom::model::slot_of;

use super::codis::CodisProxy;

/// `SET k v`; the error as text.
pub async fn set(c: &mut MultiplexedConnection, k: &str, v: &str) -> Result<(), String> {
    redis::cmd("SET")
        .arg(k)
        .arg(v)
        .query_async::<String>(c)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `GET k`; the error as text.
pub async fn get(c: &mut MultiplexedConnection, k: &str) -> Result<Option<String>, String> {
    redis::cmd("GET")
        .arg(k)
        .query_async::<Option<String>>(c)
        .await
        .map_err(|e| e.to_string())
}

/// What one [`writer`] saw: the last acknowledged value of each key, the
/// acknowledged writes and the retried ones.
pub type Written = (BTreeMap<String, String>, u64, u64);

/// One writer of the checked load: it owns `keys` (no other writer touches
/// them), writes each through one proxy, reads it back through the other, and
/// remembers the last acknowledged value. A write that fails is retried until
/// acknowledged, so the last value is known. It runs at least two rounds and
/// stops after the round during which `stop` is set.
pub async fn writer(keys: Vec<String>, via: [&CodisProxy; 2], stop: Arc<AtomicBool>) -> Written {
    let mut w = via[0].conn().await.unwrap();
    let mut r = via[1].conn().await.unwrap();
    let mut last = BTreeMap::new();
    let (mut writes, mut retries) = (0u64, 0u64);
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) || round < 2 {
        round += 1;
        for k in &keys {
            let v = format!("{round}");
            // A whole migration step with its barrier fits in this window on
            // a loaded host; a write refused for longer is a lost slot.
            let deadline = Instant::now() + Duration::from_secs(60);
            while let Err(e) = set(&mut w, k, &v).await {
                retries += 1;
                assert!(
                    Instant::now() < deadline,
                    "SET {k} through {} failed for 60 s: {e}",
                    via[0].proxy_addr()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            writes += 1;
            last.insert(k.clone(), v.clone());
            let got = get(&mut r, k).await;
            assert_eq!(
                got,
                Ok(Some(v.clone())),
                "GET {k} through {} after SET {k} {v} through {}",
                via[1].proxy_addr(),
                via[0].proxy_addr()
            );
        }
    }
    (last, writes, retries)
}

/// Two writers over `keys` (halves, crossing `a` and `b`) until `stop`; the
/// last acknowledged value of every key and the totals of writes and retries.
pub async fn crossed_load(
    keys: &[String],
    a: &CodisProxy,
    b: &CodisProxy,
    stop: Arc<AtomicBool>,
) -> Written {
    let even = keys.iter().step_by(2).cloned().collect();
    let odd = keys.iter().skip(1).step_by(2).cloned().collect();
    let (w0, w1) = tokio::join!(
        writer(even, [a, b], stop.clone()),
        writer(odd, [b, a], stop.clone()),
    );
    let mut last = w0.0;
    last.extend(w1.0);
    (last, w0.1 + w1.1, w0.2 + w1.2)
}

/// Asserts that each key is read through `proxy` with its last value.
pub async fn assert_read_back(proxy: &CodisProxy, last: &BTreeMap<String, String>) {
    let mut conn = proxy.conn().await.unwrap();
    for (k, v) in last {
        assert_eq!(
            get(&mut conn, k).await,
            Ok(Some(v.clone())),
            "{k} through {}",
            proxy.proxy_addr()
        );
    }
}

/// Asserts that every key is on the master of the group owning its slot
/// (`group_of[slot]`, 1 or 2) and not on the other one; returns how many.
pub async fn assert_keys_on_owners(
    masters: &mut [MultiplexedConnection; 2],
    group_of: &[u32],
    keys: impl IntoIterator<Item = String>,
) -> usize {
    let mut checked = 0;
    for k in keys {
        let slot = slot_of(k.as_bytes());
        let owner = usize::from(group_of[slot as usize] == 2);
        let here: i64 = redis::cmd("EXISTS")
            .arg(&k)
            .query_async(&mut masters[owner])
            .await
            .unwrap();
        let there: i64 = redis::cmd("EXISTS")
            .arg(&k)
            .query_async(&mut masters[1 - owner])
            .await
            .unwrap();
        assert_eq!((here, there), (1, 0), "{k} (slot {slot})");
        checked += 1;
    }
    checked
}

/// How many bulk keys [`fill_bulk`] writes: enough that 256 slots take a while
/// to migrate, so the load meets every step.
pub const BULK: usize = 20_000;

/// The name of bulk key `i`.
pub fn bulk_key(i: usize) -> String {
    format!("bulk:{i}")
}

/// Writes bulk keys 0..n (64 bytes each) through `proxy`, pipelined.
pub async fn fill_bulk(proxy: &CodisProxy, n: usize) {
    let mut conn = proxy.conn().await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("SET")
                .arg(bulk_key(i))
                .arg("x".repeat(64))
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
    }
}
