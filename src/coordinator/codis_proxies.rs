//! Unmodified codis-proxy processes: adding one (learn its token, check the
//! xauth, store it), removing one (`PUT shutdown`), and what their drivers
//! (`tasks::codis_proxy`) need to bring each proxy to the current table.
//!
//! A codis-proxy has no lease and cannot fence itself: a barrier waits for it,
//! whatever its state, until it applied the revision (a successful `fillslots`)
//! or it is removed (`RemoveProxy --force` ignores a failed shutdown), as Codis's
//! dashboard does.

use std::sync::Arc;

use super::error::{exists, precondition};
use super::leases::ProxyReport;
use super::{Change, Coordinator, Error, Result, check_addr};
use crate::codis_proxy::{CodisProxyApi, CodisProxyError, xauth};
use crate::model::{Proxy, ProxyKind};

impl Coordinator {
    /// The HTTP client of codis-proxies' admin API.
    pub fn codis_api(&self) -> &Arc<dyn CodisProxyApi> {
        &self.backends.codis_proxies
    }

    /// The xauth codis-proxy `token` expects (product, product_auth, token).
    pub fn codis_xauth(&self, token: &str) -> String {
        xauth(self.product(), &self.settings.ha.product_auth, token)
    }

    /// The stored codis-proxy `token`, if it still is one.
    pub fn codis_proxy(&self, token: &str) -> Option<Proxy> {
        self.cache()
            .proxies
            .get(token)
            .filter(|p| p.kind == ProxyKind::Codis)
            .cloned()
    }

    /// The tokens of every stored codis-proxy.
    pub fn codis_proxy_tokens(&self) -> Vec<String> {
        self.cache()
            .proxies
            .values()
            .filter(|p| p.kind == ProxyKind::Codis)
            .map(|p| p.token.clone())
            .collect()
    }

    /// Resolves when a codis-proxy was added or removed since the last call.
    pub async fn codis_proxies_changed(&self) {
        self.wake.codis_proxies.notified().await;
    }

    /// Adds the codis-proxy whose admin API is at `admin_addr`: `GET model`
    /// (its token and product), `xping` with the xauth of this product, then
    /// stores it. Its driver then sends it every slot, starts it and gives it
    /// the Sentinels; this waits until it has, for at most the barrier timeout.
    pub async fn add_codis_proxy(&self, admin_addr: &str) -> Result<Proxy> {
        check_addr(admin_addr)?;
        self.ensure_online()?;
        let api = self.codis_api();
        let mut p = api.model(admin_addr).await?;
        if p.product_name != self.product() {
            return Err(precondition(format!(
                "the codis-proxy at {admin_addr} serves product {:?}; this topom coordinates {:?} \
                 (set its product_name, or add it to the topom of its product)",
                p.product_name,
                self.product()
            )));
        }
        if p.token.contains('/') || p.token.len() > 128 {
            return Err(precondition(format!(
                "the codis-proxy at {admin_addr} has an unusable token {:?}",
                p.token
            )));
        }
        let x = self.codis_xauth(&p.token);
        api.xping(admin_addr, &x).await.map_err(|e| match e {
            CodisProxyError::Remote { cause, .. } => precondition(format!(
                "the codis-proxy at {admin_addr} refused topom's xauth ({cause}): its product_auth \
                 differs from this topom's product_auth"
            )),
            e => e.into(),
        })?;
        // Codis calls a proxy at the admin address it reports (its own view of
        // its listener); the one dialled stands in only when it reports none.
        if p.admin_addr.is_empty() {
            p.admin_addr = admin_addr.to_owned();
        }
        check_addr(&p.admin_addr).map_err(|e| {
            precondition(format!(
                "the codis-proxy at {admin_addr} reports an unusable admin_addr {:?}: {e}",
                p.admin_addr
            ))
        })?;
        p.kind = ProxyKind::Codis;
        let stored = self
            .mutate(|d| {
                if let Some(old) = d.proxies.get(&p.token) {
                    return Err(exists(format!(
                        "proxy {} is already registered (admin {}, id {})",
                        p.token, old.admin_addr, old.id
                    )));
                }
                p.id = d.proxies.values().map(|x| x.id).max().unwrap_or(0) + 1;
                Ok((
                    Change {
                        proxies: vec![p.clone()],
                        ..Change::default()
                    },
                    p.clone(),
                ))
            })
            .await?;
        // A token removed earlier may still be marked removed in the book.
        self.leases.forget(&stored.token);
        self.wake.codis_proxies.notify_one();
        self.wait_codis_online(&stored.token).await?;
        Ok(stored)
    }

    async fn wait_codis_online(&self, token: &str) -> Result<()> {
        let revision = self.table().revision;
        let timeout = self.settings.proxy.barrier_timeout;
        let mut changed = self.leases.subscribe();
        let ready = async {
            loop {
                let st = self.leases.status(token);
                if st.applied_revision >= revision && st.driver.as_ref().is_some_and(|d| d.online) {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(timeout, ready).await.is_ok() {
            return Ok(());
        }
        let why = self
            .leases
            .status(token)
            .driver
            .map(|d| d.last_error)
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "no answer yet".to_owned());
        Err(Error::DeadlineExceeded(format!(
            "codis-proxy {token} is stored, but did not take the slot table within {timeout:?} \
             ({why}); topom keeps trying (topom-admin proxy list shows its state)"
        )))
    }

    /// The driver's `fillslots` of `revision` (sent with `nonce`) succeeded:
    /// the proxy's ACK of it.
    pub fn codis_applied(&self, token: &str, revision: u64, nonce: &str) {
        self.leases.answer(token, revision, nonce, None);
    }

    /// The driver made an admin call to `token`: `Err((error, answered))`
    /// when it failed, `answered` when the proxy did answer (a refusal).
    pub fn codis_called(&self, token: &str, outcome: std::result::Result<(), (String, bool)>) {
        self.leases.driven(token, outcome);
    }

    /// Whether codis-proxy `token` serves clients (started).
    pub fn codis_online(&self, token: &str, online: bool) {
        self.leases.driven_online(token, online);
    }

    /// The latest stats of codis-proxy `token`, shown like any proxy's.
    pub fn codis_report(&self, token: &str, report: ProxyReport) {
        self.leases.report(token, report);
    }

    /// `PUT shutdown` to a codis-proxy being removed; with `force` a failure
    /// is only logged.
    pub(super) async fn shutdown_codis_proxy(&self, p: &Proxy, force: bool) -> Result<()> {
        let x = self.codis_xauth(&p.token);
        match self.codis_api().shutdown(&p.admin_addr, &x).await {
            Ok(()) => Ok(()),
            Err(e) if force => {
                tracing::warn!(proxy = %p.token, error = %e, "codis-proxy shutdown failed; removed anyway (force)");
                Ok(())
            }
            Err(e) => Err(precondition(format!(
                "codis-proxy {} could not be shut down ({e}); stop it yourself and remove it with force",
                p.token
            ))),
        }
    }
}
