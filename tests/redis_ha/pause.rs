//! A write pause holds writes, not reads, until the unpause releases them.

use std::time::{Duration, Instant};

use topom::redis::{Conn, HaAdmin, PooledHa, Value};

use crate::common::redis::RedisServer;
use crate::common::wait_until;
use crate::{T, client};

/// Whether `CLIENT LIST` (asked on `c`) shows a client held on a `SET`.
async fn a_set_is_held(c: &mut Conn) -> bool {
    let Ok(list) = c.call(&[b"CLIENT", b"LIST"]).await else {
        return false;
    };
    let list = list.to_text().unwrap_or_default();
    list.lines().any(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        fields.contains(&"cmd=set")
            && fields
                .iter()
                .any(|f| f.strip_prefix("flags=").is_some_and(|v| v.contains('b')))
    })
}

#[tokio::test]
async fn pause_writes_holds_writes_until_unpause() {
    let a = RedisServer::start().await;
    let ha = PooledHa::new("");
    let mut writer = client(&a.addr(), None).await;
    let mut reader = client(&a.addr(), None).await;
    // Long enough that only the unpause can release the write.
    let pause = Duration::from_secs(5);
    ha.pause_writes(&a.addr(), pause, T).await.expect("pause");
    let paused_at = Instant::now();
    let write = tokio::spawn(async move {
        writer
            .call(&[b"SET", b"k", b"v"])
            .await
            .map(|_| Instant::now())
    });
    wait_until(Duration::from_secs(2), "the SET to be held", async || {
        a_set_is_held(&mut reader).await
    })
    .await;
    // Reads still answer.
    let got = reader
        .call(&[b"GET", b"k"])
        .await
        .expect("GET during pause");
    assert_eq!(got, Value::Nil);
    assert!(!write.is_finished());

    let unpaused_at = Instant::now();
    ha.unpause(&a.addr(), T).await.expect("unpause");
    let done_at = tokio::time::timeout(Duration::from_secs(2), write)
        .await
        .expect("the write should complete after the unpause")
        .expect("writer task")
        .expect("SET");
    assert!(done_at >= unpaused_at);
    assert!(done_at - unpaused_at < Duration::from_secs(1));
    assert!(done_at - paused_at < pause, "the pause expired instead");
    eprintln!(
        "write held {:?}, released {:?} after the unpause",
        done_at - paused_at,
        done_at - unpaused_at
    );
    let got = reader.call(&[b"GET", b"k"]).await.expect("GET");
    assert_eq!(got, Value::Bulk(b"v".to_vec()));
}
