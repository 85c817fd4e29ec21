//! A fleet of fake servers on loopback ports, laid out as groups of
//! [`SERVERS_PER_GROUP`] (a master and replicas that name it), plus silent ones.

use super::info_text::{Rng, Role, info_text};
use super::replies::Info;
use super::responders::{Behaviour, Responders};

/// Servers per group: one master, three replicas.
pub const SERVERS_PER_GROUP: usize = 4;

/// The fake servers of a run: `live[i]` answers INFO as member `i % 4` of group
/// `i / 4`; `silent` never answer.
pub struct Targets {
    pub live: Vec<String>,
    pub silent: Vec<String>,
    pub info_bytes: (usize, usize),
    pub info_fields: usize,
}

fn bind_local() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.set_nonblocking(true).expect("non-blocking listener");
    l
}

pub fn start_targets(responders: &Responders, live: usize, silent: usize) -> Targets {
    let live_l: Vec<_> = (0..live).map(|_| bind_local()).collect();
    let addrs: Vec<String> = live_l
        .iter()
        .map(|l| l.local_addr().expect("local addr").to_string())
        .collect();
    let mut seeds = Rng(0x5eed);
    let mut info_bytes = (usize::MAX, 0);
    let mut info_fields = usize::MAX;
    let mut served = Vec::new();
    for (i, l) in live_l.into_iter().enumerate() {
        let g = i / SERVERS_PER_GROUP * SERVERS_PER_GROUP;
        let group_end = (g + SERVERS_PER_GROUP).min(addrs.len());
        let mut group_rng = Rng(g as u64 + 1);
        let master_offset = group_rng.range(1 << 30, 1 << 40) as i64;
        let replid = group_rng.hex(40);
        let text = info_text(
            seeds.next(),
            &Role {
                port: l.local_addr().expect("local addr").port(),
                index: i - g,
                master: &addrs[g],
                replicas: &addrs[g + 1..group_end],
                master_offset,
                replid: &replid,
            },
        );
        let info = Info::new(text);
        info_bytes = (
            info_bytes.0.min(info.bulk.len()),
            info_bytes.1.max(info.bulk.len()),
        );
        info_fields = info_fields.min(info.fields);
        served.push((l, Behaviour::Answer(info)));
    }
    let silent_l: Vec<_> = (0..silent).map(|_| bind_local()).collect();
    let silent_addrs = silent_l
        .iter()
        .map(|l| l.local_addr().expect("local addr").to_string())
        .collect();
    served.extend(silent_l.into_iter().map(|l| (l, Behaviour::Silent)));
    responders.serve(served);
    Targets {
        live: addrs,
        silent: silent_addrs,
        info_bytes,
        info_fields,
    }
}
