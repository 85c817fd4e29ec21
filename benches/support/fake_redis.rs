//! Fake Redis servers for the benches: many loopback ports served from one
//! thread, answering INFO with a realistic text, so a probe's cost is measured
//! without running a thousand redis-server processes.
//!
//! They speak just enough RESP2: `INFO [section]`, `AUTH`, `PING`, anything else
//! `-ERR unknown command`. A silent one accepts and never answers. Not for
//! checking Redis semantics: the integration tests use real servers for that.

pub mod fleet;
pub mod info_text;
pub mod replies;
pub mod resp;
pub mod responders;
