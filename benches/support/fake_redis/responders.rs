//! The fake servers' runtime: one current-thread tokio runtime on a thread of its
//! own, so the CPU the fakes use can be read apart from the bench's clients.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::replies::{Info, respond};
use super::resp::parse_command;
use crate::support::procfs::thread_id;

/// What a fake server does with a connection.
pub enum Behaviour {
    /// Answers every command from its canned replies.
    Answer(Info),
    /// Reads and never answers: a hung server, for deadlines.
    Silent,
}

/// The responders' runtime: a current-thread runtime driven by its own thread.
pub struct Responders {
    handle: tokio::runtime::Handle,
    pub tid: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responders {
    pub fn start() -> Responders {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("responder runtime");
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fake-redis".into())
            .spawn(move || {
                let _ = tid_tx.send(thread_id().unwrap_or(0));
                let _ = rt.block_on(stopped);
                // Dropping the runtime closes every listener and connection.
            })
            .expect("responder thread");
        let tid = tid_rx.recv().expect("responder thread id");
        Responders {
            handle,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Serves each listener (already bound) on the responders' runtime.
    pub fn serve(&self, listeners: Vec<(std::net::TcpListener, Behaviour)>) {
        for (l, behaviour) in listeners {
            self.handle.spawn(async move {
                let l = tokio::net::TcpListener::from_std(l).expect("register listener");
                let behaviour = Arc::new(behaviour);
                loop {
                    match l.accept().await {
                        Ok((sock, _)) => {
                            let b = behaviour.clone();
                            tokio::spawn(async move {
                                match &*b {
                                    Behaviour::Answer(info) => answer(sock, info).await,
                                    Behaviour::Silent => swallow(sock).await,
                                }
                            });
                        }
                        // Out of file descriptors, most likely: back off.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            });
        }
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A silent target: reads and discards until the peer goes.
async fn swallow(mut sock: tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Serves RESP2 commands (pipelined or not) until the peer goes.
async fn answer(mut sock: tokio::net::TcpStream, info: &Info) {
    let _ = sock.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut out: Vec<u8> = Vec::with_capacity(8 * 1024);
    loop {
        let mut used = 0;
        loop {
            match parse_command(&buf[used..]) {
                Ok(Some((args, n))) => {
                    let base = used;
                    let args: Vec<&[u8]> = args
                        .iter()
                        .map(|&(a, b)| &buf[base + a..base + b])
                        .collect();
                    respond(&args, info, &mut out);
                    used += n;
                }
                Ok(None) => break,
                Err(e) => {
                    out.extend_from_slice(format!("-ERR Protocol error: {e}\r\n").as_bytes());
                    let _ = sock.write_all(&out).await;
                    return;
                }
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match sock.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}
