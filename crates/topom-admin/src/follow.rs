//! Which topom instance a call goes to, and whether a failed call may go to
//! another one. No I/O here: `client` runs the calls, this decides.
//!
//! The rule (the Go client's, plus one safety line):
//! - a `topom-leader` named by an `UNAVAILABLE` answer is tried next (and kept
//!   in the list when it was not there): that answer comes from a standby,
//!   which did nothing, so even a mutation may go on;
//! - no connection, or a server's `UNAVAILABLE` without a leader: the next
//!   endpoint;
//! - a mutation whose outcome is unknown (the connection broke after the
//!   request went out) stops there: it may have been applied, and a second
//!   run could apply it twice;
//! - no answer within the deadline stops every call: the time is spent, and a
//!   mutation's outcome is unknown;
//! - one pass around the list plus the leaders learned on the way; each
//!   endpoint is tried at most once per call.

use tonic::{Code, Status};

use super::parse;

/// The metadata key a standby names the leader under (trailing metadata of
/// its refusals, and a header of every response).
pub const LEADER_KEY: &str = "topom-leader";

/// Whether an RPC changes nothing, so that sending it twice is harmless. Named
/// by the generated client method (`get_overview`).
pub fn is_read(method: &str) -> bool {
    // RefreshRedisStats runs one more stats round; opening WatchStats again
    // only opens another stream.
    ["get_", "list_", "watch_"]
        .iter()
        .any(|p| method.starts_with(p))
        || method == "refresh_redis_stats"
}

/// The leader named in a status's metadata, as a URL like the endpoints.
pub fn leader_of(status: &Status) -> Option<String> {
    let value = status.metadata().get(LEADER_KEY)?.to_str().ok()?.trim();
    if value.is_empty() {
        return None;
    }
    parse::normalize_addr(value).ok()
}

/// How one attempt failed, as far as the follow rule cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request never left: no connection could be made.
    NotSent,
    /// A standby refused it and named the leader.
    Redirect(String),
    /// The server answered UNAVAILABLE without naming a leader.
    Unavailable,
    /// The connection broke after the request may have been sent.
    Broken,
    /// The client's deadline passed before an answer came.
    Deadline,
    /// Any other answer: final.
    Final,
}

/// Sorts a failed call's status. `method` matters for `resign`, which a
/// standby refuses with FAILED_PRECONDITION (naming the leader) rather than
/// UNAVAILABLE.
pub fn classify(method: &str, status: &Status) -> Outcome {
    // Statuses built by the client from a transport error keep that error as
    // their source; one decoded from the server's answer has none.
    if std::error::Error::source(status).is_some() {
        return if in_chain(status, |e| e.is::<tonic::TimeoutExpired>()) {
            Outcome::Deadline
        } else if in_chain(status, |e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        }) {
            // Refused while (re)connecting: the request was never written.
            Outcome::NotSent
        } else {
            Outcome::Broken
        };
    }
    let standby_refusal = status.code() == Code::Unavailable
        || (status.code() == Code::FailedPrecondition && method == "resign");
    match (standby_refusal, leader_of(status)) {
        (true, Some(leader)) => Outcome::Redirect(leader),
        _ if status.code() == Code::Unavailable => Outcome::Unavailable,
        _ => Outcome::Final,
    }
}

/// Whether an error under `status` (a client-made one) matches `test`.
fn in_chain(status: &Status, test: impl Fn(&(dyn std::error::Error + 'static)) -> bool) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = current {
        if test(e) {
            return true;
        }
        current = e.source();
    }
    false
}

/// The endpoints of this process: those given, then leaders learned; calls
/// start at the one that answered last.
#[derive(Debug)]
pub struct Endpoints {
    list: Vec<String>,
    current: usize,
}

impl Endpoints {
    /// The endpoints given on the command line (at least one, already URLs).
    pub fn new(list: Vec<String>) -> Self {
        let mut unique: Vec<String> = Vec::with_capacity(list.len());
        for e in list {
            if !unique.contains(&e) {
                unique.push(e);
            }
        }
        Self {
            list: unique,
            current: 0,
        }
    }

    /// The order one call tries them in: one pass from the current one.
    pub fn pass(&self) -> Walk {
        let n = self.list.len();
        Walk {
            queue: (0..n)
                .map(|i| self.list[(self.current + i) % n].clone())
                .collect(),
            tried: Vec::new(),
        }
    }

    /// `addr` answered: the next call starts there.
    pub fn settle(&mut self, addr: &str) {
        if let Some(i) = self.list.iter().position(|e| e == addr) {
            self.current = i;
        }
    }

    /// A leader named by a standby joins the list.
    pub fn learn(&mut self, leader: &str) {
        if !self.list.iter().any(|e| e == leader) {
            self.list.push(leader.to_string());
        }
    }
}

/// One call's way through the endpoints.
#[derive(Debug)]
pub struct Walk {
    queue: std::collections::VecDeque<String>,
    tried: Vec<(String, String)>,
}

impl Walk {
    /// The endpoint to try next, if any is left.
    pub fn next_endpoint(&mut self) -> Option<String> {
        self.queue.pop_front()
    }

    /// `addr` failed with `why` (a readable line); a leader it named goes
    /// first, unless it was tried already.
    pub fn failed(&mut self, addr: String, why: String, leader: Option<&str>) {
        self.tried.push((addr, why));
        if let Some(leader) = leader
            && !self.tried.iter().any(|(a, _)| a == leader)
        {
            self.queue.retain(|e| e != leader);
            self.queue.push_front(leader.to_string());
        }
    }

    /// Every endpoint tried, with why it failed, in order.
    pub fn tried(&self) -> &[(String, String)] {
        &self.tried
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    fn standby(leader: &str) -> Status {
        let mut s = Status::unavailable("not the leader");
        s.metadata_mut()
            .insert(LEADER_KEY, MetadataValue::try_from(leader).unwrap());
        s
    }

    #[test]
    fn reads_and_mutations() {
        for read in [
            "get_overview",
            "list_slots",
            "watch_stats",
            "refresh_redis_stats",
        ] {
            assert!(is_read(read), "{read}");
        }
        for write in [
            "create_group",
            "resign",
            "promote_server",
            "reload",
            "shutdown",
        ] {
            assert!(!is_read(write), "{write}");
        }
    }

    #[test]
    fn statuses_are_sorted() {
        assert_eq!(
            classify("create_group", &standby("10.0.0.2:18080")),
            Outcome::Redirect("http://10.0.0.2:18080".into())
        );
        assert_eq!(
            classify("create_group", &Status::unavailable("no leader")),
            Outcome::Unavailable
        );
        assert_eq!(
            classify("create_group", &Status::not_found("group-[3]")),
            Outcome::Final
        );
        // A NOT_FOUND read from a standby carries the header too: final.
        let mut nf = Status::not_found("group-[3]");
        nf.metadata_mut()
            .insert(LEADER_KEY, MetadataValue::from_static("h:1"));
        assert_eq!(classify("get_group", &nf), Outcome::Final);
        let mut fp = Status::failed_precondition("a standby cannot resign");
        fp.metadata_mut()
            .insert(LEADER_KEY, MetadataValue::from_static("h:1"));
        assert_eq!(
            classify("resign", &fp),
            Outcome::Redirect("http://h:1".into())
        );
        assert_eq!(classify("create_group", &fp), Outcome::Final);
        let refused = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(classify("create_group", &refused), Outcome::NotSent);
        let reset = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(classify("create_group", &reset), Outcome::Broken);
        // tonic's own grpc-timeout enforcement, as the channel reports it.
        let expired = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(classify("create_group", &expired), Outcome::Deadline);
        // A server's DEADLINE_EXCEEDED (Resign with no taker) is an answer.
        assert_eq!(
            classify("resign", &Status::deadline_exceeded("no standby took over")),
            Outcome::Final
        );
    }

    #[test]
    fn one_pass_plus_learned_leaders() {
        let order = |eps: &Endpoints| {
            let mut walk = eps.pass();
            std::iter::from_fn(move || walk.next_endpoint()).collect::<Vec<_>>()
        };
        let mut eps = Endpoints::new(vec!["a".into(), "b".into(), "a".into(), "c".into()]);
        assert_eq!(order(&eps), ["a", "b", "c"]);
        eps.settle("b");
        let mut walk = eps.pass();
        assert_eq!(walk.next_endpoint().as_deref(), Some("b"));
        // b names the leader d (new): d next, then the rest of the pass.
        walk.failed("b".into(), "standby".into(), Some("d"));
        eps.learn("d");
        assert_eq!(walk.next_endpoint().as_deref(), Some("d"));
        // d names b, already tried: no loop.
        walk.failed("d".into(), "standby".into(), Some("b"));
        assert_eq!(walk.next_endpoint().as_deref(), Some("c"));
        // c names a, not tried yet: a goes first and only once.
        walk.failed("c".into(), "standby".into(), Some("a"));
        assert_eq!(walk.next_endpoint().as_deref(), Some("a"));
        walk.failed("a".into(), "refused".into(), None);
        assert_eq!(walk.next_endpoint(), None);
        let tried: Vec<&str> = walk.tried().iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(tried, ["b", "d", "c", "a"]);
        // The next call starts where the last one was answered (b).
        assert_eq!(order(&eps), ["b", "c", "d", "a"]);
    }
}
