//! The fixtures themselves (tests/common): redis-server, free ports, waiting.

use std::time::Duration;

use crate::common::redis::RedisServer;
use crate::common::{ports::free_port, wait_until};

async fn ping(url: &str) -> Result<String, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    redis::cmd("PING").query_async(&mut con).await
}

#[tokio::test]
async fn redis_server_lifecycle() {
    let mut server = RedisServer::start_with(&["maxmemory 10mb"]).await;
    assert_eq!(server.addr(), format!("127.0.0.1:{}", server.port()));
    assert_eq!(ping(&server.url()).await.unwrap(), "PONG");
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let maxmemory: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(maxmemory, ["maxmemory", "10485760"]);

    let first = server.pid().unwrap();
    server.kill();
    assert_eq!(server.pid(), None);
    assert!(
        ping(&server.url()).await.is_err(),
        "still answering after kill"
    );
    server.restart().await;
    assert_ne!(server.pid(), Some(first));
    assert_eq!(ping(&server.url()).await.unwrap(), "PONG");
    server.terminate().await;
    assert!(
        ping(&server.url()).await.is_err(),
        "still answering after SIGTERM"
    );
}

#[test]
fn free_ports_are_not_handed_out_twice() {
    let ports: std::collections::HashSet<u16> = (0..50).map(|_| free_port()).collect();
    assert_eq!(ports.len(), 50);
}

#[tokio::test]
#[should_panic(expected = "timed out after 100ms waiting for the impossible")]
async fn wait_until_panics_on_timeout() {
    wait_until(Duration::from_millis(100), "the impossible", async || false).await;
}
