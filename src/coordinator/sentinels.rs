//! Sentinels (reference §3.5, §6): adding, removing and resyncing the Sentinels
//! that watch every group, and following their master switches (§4.6).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures::future::join_all;

use super::error::{exists, invalid, not_found};
use super::events::{Event, EventKind};
use super::{Change, Coordinator, Result, check_addr};
use crate::model::{InfoMap, Sentinel, SentinelReport};
use crate::redis::{MonitorSpec, RedisError};

/// A master switch as the Sentinels report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedMaster {
    /// `ip:port` of the master with the highest config epoch.
    pub addr: String,
    /// That epoch.
    pub epoch: i64,
}

impl Coordinator {
    /// The monitoring name of group `gid`.
    pub fn monitor_name(&self, gid: u32) -> String {
        format!("{}-{gid}", self.product())
    }

    /// Adds a Sentinel after checking that it is one. Nothing is monitored until
    /// [`Coordinator::resync_sentinels`].
    pub async fn add_sentinel(&self, addr: &str) -> Result<Sentinel> {
        check_addr(addr)?;
        if self.sentinel().servers.iter().any(|s| s == addr) {
            return Err(exists(format!("sentinel {addr} is already configured")));
        }
        self.backends
            .ha
            .sentinel_probe(addr, self.settings.ha.sentinel.client_timeout)
            .await?;
        self.mutate(|d| {
            if d.sentinel.servers.iter().any(|s| s == addr) {
                return Err(exists(format!("sentinel {addr} is already configured")));
            }
            let mut s = d.sentinel.clone();
            s.servers.push(addr.to_owned());
            s.out_of_sync = true;
            Ok((Change::of_sentinel(s.clone()), s))
        })
        .await
    }

    /// Removes a Sentinel, first removing this product's names from it; with
    /// `force`, even when that fails.
    pub async fn remove_sentinel(&self, addr: &str, force: bool) -> Result<Sentinel> {
        check_addr(addr)?;
        if !self.sentinel().servers.iter().any(|s| s == addr) {
            return Err(not_found(format!("sentinel {addr} is not configured")));
        }
        if let Err(e) = self.unmonitor_all(addr).await {
            if !force {
                return Err(super::error::precondition(format!(
                    "could not remove this product's masters from sentinel {addr}: {e}; use force to remove it anyway"
                )));
            }
            tracing::warn!(sentinel = addr, error = %e, "removing an unreachable sentinel (force)");
        }
        self.mutate(|d| {
            let mut s = d.sentinel.clone();
            s.servers.retain(|x| x != addr);
            s.out_of_sync = !s.servers.is_empty();
            Ok((Change::of_sentinel(s.clone()), s))
        })
        .await
    }

    /// Makes every Sentinel monitor exactly this product's non-empty groups with
    /// the configured settings (reference §6.1).
    pub async fn resync_sentinels(&self) -> Result<Sentinel> {
        self.set_sentinel_out_of_sync(true).await?;
        let servers = self.sentinel().servers;
        for (addr, r) in servers
            .iter()
            .zip(join_all(servers.iter().map(|a| self.unmonitor_all(a))).await)
        {
            if let Err(e) = r {
                tracing::warn!(sentinel = %addr, error = %e, "could not remove old names");
            }
        }
        let groups: Vec<u32> = self
            .groups()
            .values()
            .filter(|g| !g.servers.is_empty())
            .map(|g| g.id)
            .collect();
        for gid in groups {
            self.monitor_in_sentinels(gid).await?;
        }
        self.set_sentinel_out_of_sync(false).await?;
        Ok(self.sentinel())
    }

    /// INFO of a Sentinel, with what it monitors for this product.
    pub async fn sentinel_info(&self, addr: &str) -> Result<SentinelReport> {
        check_addr(addr)?;
        Ok(self
            .backends
            .probe
            .sentinel_info(
                addr,
                self.product(),
                self.settings.ha.sentinel.client_timeout,
            )
            .await?)
    }

    /// Drops group `gid` from every Sentinel (before a planned switchover, so they
    /// do not fight it). Errors are only logged.
    pub(super) async fn forget_in_sentinels(&self, gid: u32) {
        let servers = self.sentinel().servers;
        if servers.is_empty() {
            return;
        }
        let name = self.monitor_name(gid);
        let t = self.settings.ha.sentinel.client_timeout;
        for (addr, r) in servers.iter().zip(
            join_all(
                servers
                    .iter()
                    .map(|a| self.backends.ha.sentinel_remove(a, &name, t)),
            )
            .await,
        ) {
            if let Err(e) = r {
                tracing::warn!(sentinel = %addr, group = gid, error = %e, "could not remove the group from a sentinel");
            }
        }
    }

    /// (Re)monitors group `gid`'s master on every Sentinel. Errors name the
    /// sentinel and the command.
    pub(super) async fn monitor_in_sentinels(&self, gid: u32) -> Result<()> {
        let servers = self.sentinel().servers;
        if servers.is_empty() {
            return Ok(());
        }
        let master = self.group(gid)?.master().to_owned();
        if master.is_empty() {
            return Ok(());
        }
        let (ip, port) = resolve(&master).await?;
        let s = &self.settings.ha.sentinel;
        let mut settings = vec![
            ("parallel-syncs".to_owned(), s.parallel_syncs.to_string()),
            (
                "down-after-milliseconds".to_owned(),
                s.down_after.as_millis().to_string(),
            ),
            (
                "failover-timeout".to_owned(),
                s.failover_timeout.as_millis().to_string(),
            ),
        ];
        if !self.settings.ha.product_auth.is_empty() {
            settings.push(("auth-pass".into(), self.settings.ha.product_auth.clone()));
        }
        if !s.notification_script.is_empty() {
            settings.push(("notification-script".into(), s.notification_script.clone()));
        }
        if !s.client_reconfig_script.is_empty() {
            settings.push((
                "client-reconfig-script".into(),
                s.client_reconfig_script.clone(),
            ));
        }
        let name = self.monitor_name(gid);
        let results = join_all(servers.iter().map(|a| async {
            // Replace, so the settings and the master are exactly ours.
            self.backends
                .ha
                .sentinel_remove(a, &name, s.client_timeout)
                .await?;
            let spec = MonitorSpec {
                name: &name,
                master_ip: &ip,
                master_port: port,
                quorum: s.quorum,
                settings: &settings,
            };
            self.backends
                .ha
                .sentinel_monitor(a, &spec, s.client_timeout)
                .await
        }))
        .await;
        for r in results {
            r?;
        }
        Ok(())
    }

    /// Removes every name of this product from one Sentinel.
    async fn unmonitor_all(&self, addr: &str) -> std::result::Result<(), RedisError> {
        let t = self.settings.ha.sentinel.client_timeout;
        let masters = self.backends.ha.sentinel_masters(addr, t).await?;
        for m in masters {
            if let Some(name) = m.get("name")
                && self.group_of_name(name).is_some()
            {
                self.backends.ha.sentinel_remove(addr, name, t).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn set_sentinel_out_of_sync(&self, v: bool) -> Result<()> {
        self.mutate(|d| {
            if d.sentinel.out_of_sync == v {
                return Ok((Change::default(), ()));
            }
            let mut s = d.sentinel.clone();
            s.out_of_sync = v;
            Ok((Change::of_sentinel(s), ()))
        })
        .await
    }

    /// The group id of a monitoring name of this product.
    pub fn group_of_name(&self, name: &str) -> Option<u32> {
        name.strip_prefix(self.product())?
            .strip_prefix('-')?
            .parse()
            .ok()
    }

    /// Asks every Sentinel for its masters and keeps, per group, the one with the
    /// highest config epoch. Fails unless a majority answers.
    pub async fn sentinel_masters(&self) -> Result<BTreeMap<u32, ReportedMaster>> {
        let servers = self.sentinel().servers;
        let t = self
            .settings
            .ha
            .sentinel
            .client_timeout
            .min(Duration::from_secs(5));
        let answers = join_all(
            servers
                .iter()
                .map(|a| self.backends.ha.sentinel_masters(a, t)),
        )
        .await;
        let ok: Vec<Vec<InfoMap>> = answers.into_iter().filter_map(|r| r.ok()).collect();
        if ok.len() < servers.len() / 2 + 1 {
            return Err(super::Error::Redis(RedisError::Reply {
                addr: servers.join(","),
                reason: format!(
                    "lost majority ({}/{} sentinels answered)",
                    ok.len(),
                    servers.len()
                ),
            }));
        }
        let mut best: BTreeMap<u32, ReportedMaster> = BTreeMap::new();
        for m in ok.iter().flatten() {
            let (Some(gid), Some(ip), Some(port)) = (
                m.get("name").and_then(|n| self.group_of_name(n)),
                m.get("ip"),
                m.get("port"),
            ) else {
                continue;
            };
            let epoch = m
                .get("config-epoch")
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            if best.get(&gid).is_none_or(|b| epoch > b.epoch) {
                best.insert(
                    gid,
                    ReportedMaster {
                        addr: format!("{ip}:{port}"),
                        epoch,
                    },
                );
            }
        }
        Ok(best)
    }

    /// Applies what the Sentinels report (§4.6): for each group whose reported
    /// master is one of its replicas, move that server to index 0 and publish a
    /// new table revision at once. `announced` is when the switch was announced
    /// (for the event's timing). Masters not in their group are logged and
    /// ignored.
    pub async fn apply_sentinel_masters(
        &self,
        masters: &BTreeMap<u32, ReportedMaster>,
        announced: Option<Instant>,
    ) -> Result<Vec<u32>> {
        {
            let mut seen = self.ha.masters.lock().unwrap_or_else(|p| p.into_inner());
            for (g, m) in masters {
                seen.insert(*g, m.addr.clone());
            }
        }
        let mut switched = Vec::new();
        for (&gid, reported) in masters {
            let change = self
                .mutate(|d| {
                    let Some(g) = d.groups.get(&gid) else {
                        tracing::warn!(group = gid, master = %reported.addr, "sentinel reports a master for an unknown group; ignored");
                        return Ok((Change::default(), None));
                    };
                    let Some(index) = g.servers.iter().position(|s| same_host(&s.addr, &reported.addr)) else {
                        tracing::warn!(group = gid, master = %reported.addr, "sentinel reports a master that is not in the group; ignored");
                        return Ok((Change::default(), None));
                    };
                    if index == 0 || g.promoting.is_some() {
                        return Ok((Change::default(), None));
                    }
                    let mut g = g.clone();
                    let old = g.servers[0].addr.clone();
                    g.servers.swap(0, index);
                    let new = g.servers[0].addr.clone();
                    Ok((
                        Change {
                            groups: vec![g],
                            // Proxies must re-resolve even a group with no slots.
                            bump: true,
                            ..Change::default()
                        },
                        Some((old, new)),
                    ))
                })
                .await?;
            if let Some((old, new)) = change {
                self.metrics.sentinel_switch();
                let took = announced.map(|t| t.elapsed());
                self.ha.events.push(Event {
                    kind: EventKind::MasterSwitch,
                    time: SystemTime::now(),
                    group_id: gid,
                    old_master: old,
                    new_master: new,
                    revision: self.table().revision,
                    detail: match took {
                        Some(d) => format!(
                            "config epoch {}; published {:.3} ms after the majority's +switch-master",
                            reported.epoch,
                            d.as_secs_f64() * 1e3
                        ),
                        None => format!("config epoch {}; found by reconciliation", reported.epoch),
                    },
                });
                switched.push(gid);
            }
        }
        Ok(switched)
    }

    /// Masters as last reported by the Sentinels (group id → address).
    pub fn reported_masters(&self) -> BTreeMap<u32, String> {
        self.ha
            .masters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Sentinels report IPs; a group may name its servers by hostname.
fn same_host(configured: &str, reported: &str) -> bool {
    configured == reported
        || configured
            .strip_prefix("localhost:")
            .is_some_and(|p| reported.strip_prefix("127.0.0.1:") == Some(p))
}

/// `host:port` → (IP, port): Sentinel needs an IP.
async fn resolve(addr: &str) -> Result<(String, u16)> {
    let mut it = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| invalid(format!("cannot resolve {addr}: {e}")))?;
    let sa = it
        .find(|a| a.is_ipv4())
        .ok_or_else(|| invalid(format!("{addr} has no IPv4 address")))?;
    Ok((sa.ip().to_string(), sa.port()))
}
