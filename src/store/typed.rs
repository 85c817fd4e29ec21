//! The typed facade over a [`MetaStore`]: paths and JSON live here only.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{MetaStore, OwnershipLock, StoreError, Write, keys};
use crate::model::{Group, MAX_SLOTS, Proxy, Sentinel, SlotActionConfig, SlotMapping, TopomRecord};

/// Typed access to one product's records.
#[derive(Debug, Clone)]
pub struct Store {
    raw: Arc<dyn MetaStore>,
    product: String,
}

/// Everything stored for a product, as loaded at start-up or on Reload.
#[derive(Debug, Clone, Default)]
pub struct ProductData {
    /// All 1024 slots, index = slot id (missing records are offline).
    pub slots: Vec<SlotMapping>,
    /// Groups by id.
    pub groups: BTreeMap<u32, Group>,
    /// Proxies by token.
    pub proxies: BTreeMap<String, Proxy>,
    /// The sentinels.
    pub sentinel: Sentinel,
    /// Slot-action engine settings.
    pub slot_action: SlotActionConfig,
}

impl Store {
    /// A facade for `product` over `raw`.
    pub fn new(raw: Arc<dyn MetaStore>, product: impl Into<String>) -> Store {
        Store {
            raw,
            product: product.into(),
        }
    }

    /// The product name.
    pub fn product(&self) -> &str {
        &self.product
    }

    /// The backend, for logs.
    pub fn describe(&self) -> String {
        self.raw.describe()
    }

    /// Loads every record of the product. A record that does not decode, or
    /// that contradicts its path or another record (a group stored under another
    /// id, a slot or slot action pointing at a group that does not exist, one
    /// server in two groups), fails the load with [`StoreError::Corrupt`] naming
    /// where the record lives (the file, for the local store) and why.
    pub async fn load(&self) -> Result<ProductData, StoreError> {
        let p = &self.product;
        let corrupt = |key: &str, reason: String| StoreError::Corrupt {
            path: self.raw.locate(key),
            reason,
        };
        let mut groups = BTreeMap::new();
        let mut server_of: BTreeMap<String, u32> = BTreeMap::new();
        for (key, value) in self.raw.list(&keys::groups_dir(p)).await? {
            let g: Group = self.decode_at(&key, &value)?;
            if g.id == 0 || g.id > crate::model::MAX_GROUP_ID {
                return Err(corrupt(
                    &key,
                    format!("group id {} is out of range 1..9999", g.id),
                ));
            }
            if keys::group(p, g.id) != key {
                return Err(corrupt(
                    &key,
                    format!(
                        "the record says group {} but is stored as {} (expected {})",
                        g.id,
                        key.rsplit('/').next().unwrap_or(&key),
                        keys::group(p, g.id)
                    ),
                ));
            }
            for s in &g.servers {
                if let Some(other) = server_of.insert(s.addr.clone(), g.id) {
                    return Err(corrupt(
                        &key,
                        format!(
                            "server {} is in group {other} and in group {}",
                            s.addr, g.id
                        ),
                    ));
                }
            }
            groups.insert(g.id, g);
        }
        let mut slots: Vec<SlotMapping> = (0..MAX_SLOTS as u32).map(SlotMapping::offline).collect();
        for (key, value) in self.raw.list(&keys::slots_dir(p)).await? {
            let m: SlotMapping = self.decode_at(&key, &value)?;
            if m.id as usize >= MAX_SLOTS || keys::slot(p, m.id) != key {
                return Err(corrupt(
                    &key,
                    format!("slot id {} does not match its path", m.id),
                ));
            }
            if m.group_id != 0 && !groups.contains_key(&m.group_id) {
                return Err(corrupt(
                    &key,
                    format!(
                        "slot {} belongs to group {}, which does not exist",
                        m.id, m.group_id
                    ),
                ));
            }
            if let Some(a) = m.action
                && !groups.contains_key(&a.target_id)
            {
                return Err(corrupt(
                    &key,
                    format!(
                        "slot {} has an action toward group {}, which does not exist",
                        m.id, a.target_id
                    ),
                ));
            }
            let id = m.id as usize;
            slots[id] = m;
        }
        let mut proxies = BTreeMap::new();
        for (key, value) in self.raw.list(&keys::proxies_dir(p)).await? {
            let x: Proxy = self.decode_at(&key, &value)?;
            if keys::proxy(p, &x.token) != key {
                return Err(corrupt(
                    &key,
                    format!(
                        "the record's token {:?} does not match its path (expected {})",
                        x.token,
                        keys::proxy(p, &x.token)
                    ),
                ));
            }
            proxies.insert(x.token.clone(), x);
        }
        let sentinel = match self.raw.get(&keys::sentinel(p)).await? {
            Some(v) => self.decode_at(&keys::sentinel(p), &v)?,
            None => Default::default(),
        };
        let slot_action = match self.raw.get(&keys::slot_action_config(p)).await? {
            Some(v) => self.decode_at(&keys::slot_action_config(p), &v)?,
            None => Default::default(),
        };
        Ok(ProductData {
            slots,
            groups,
            proxies,
            sentinel,
            slot_action,
        })
    }

    /// Writes a batch of records: one etcd transaction, or file by file (each
    /// atomic) on the local backend.
    pub async fn commit(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if let Some(e) = batch.error {
            return Err(e);
        }
        if batch.writes.is_empty() {
            return Ok(());
        }
        let p = &self.product;
        let writes = batch
            .writes
            .into_iter()
            .map(|(rec, value)| {
                let key = match rec {
                    Rec::Group(id) => keys::group(p, id),
                    Rec::Slot(id) => keys::slot(p, id),
                    Rec::Sentinel => keys::sentinel(p),
                    Rec::SlotAction => keys::slot_action_config(p),
                    Rec::Proxy(token) => keys::proxy(p, &token),
                };
                (key, value)
            })
            .collect();
        self.raw.write_batch(writes).await
    }

    /// Writes slot mappings (one batch).
    pub async fn update_slots(&self, slots: &[SlotMapping]) -> Result<(), StoreError> {
        let writes = slots
            .iter()
            .map(|m| Ok((keys::slot(&self.product, m.id), Some(encode(m)?))))
            .collect::<Result<Vec<Write>, StoreError>>()?;
        self.raw.write_batch(writes).await
    }

    /// Writes groups and slot mappings together (one batch), for operations that
    /// change both.
    pub async fn update_groups_and_slots(
        &self,
        groups: &[Group],
        slots: &[SlotMapping],
    ) -> Result<(), StoreError> {
        let mut writes = Vec::with_capacity(groups.len() + slots.len());
        for g in groups {
            writes.push((keys::group(&self.product, g.id), Some(encode(g)?)));
        }
        for m in slots {
            writes.push((keys::slot(&self.product, m.id), Some(encode(m)?)));
        }
        self.raw.write_batch(writes).await
    }

    /// Creates or replaces a group.
    pub async fn update_group(&self, group: &Group) -> Result<(), StoreError> {
        self.raw
            .put(&keys::group(&self.product, group.id), &encode(group)?)
            .await
    }

    /// Deletes a group.
    pub async fn delete_group(&self, id: u32) -> Result<(), StoreError> {
        self.raw.delete(&keys::group(&self.product, id)).await
    }

    /// Creates or replaces a proxy.
    pub async fn update_proxy(&self, proxy: &Proxy) -> Result<(), StoreError> {
        self.raw
            .put(&keys::proxy(&self.product, &proxy.token), &encode(proxy)?)
            .await
    }

    /// Deletes a proxy.
    pub async fn delete_proxy(&self, token: &str) -> Result<(), StoreError> {
        self.raw.delete(&keys::proxy(&self.product, token)).await
    }

    /// Replaces the sentinel list.
    pub async fn update_sentinel(&self, sentinel: &Sentinel) -> Result<(), StoreError> {
        self.raw
            .put(&keys::sentinel(&self.product), &encode(sentinel)?)
            .await
    }

    /// Replaces the slot-action settings.
    pub async fn update_slot_action_config(&self, c: &SlotActionConfig) -> Result<(), StoreError> {
        self.raw
            .put(&keys::slot_action_config(&self.product), &encode(c)?)
            .await
    }

    /// The current owner record, if any (it may be stale: a dead owner's record
    /// stays until the next owner overwrites it).
    pub async fn owner(&self) -> Result<Option<TopomRecord>, StoreError> {
        self.read(&keys::topom(&self.product)).await
    }

    /// Takes the product's ownership lock, recording `me` as the owner.
    pub async fn acquire(&self, me: &TopomRecord) -> Result<Box<dyn OwnershipLock>, StoreError> {
        self.raw
            .lock(&keys::topom(&self.product), &encode(me)?)
            .await
    }

    /// Takes the product's ownership lock if free, else stands by for it
    /// ([`MetaStore::campaign`]).
    pub async fn campaign(&self, me: &TopomRecord) -> Result<Box<dyn OwnershipLock>, StoreError> {
        self.raw
            .campaign(&keys::topom(&self.product), &encode(me)?)
            .await
    }

    /// Decodes the record at `key`; a failure names where the record lives.
    fn decode_at<T: DeserializeOwned>(&self, key: &str, value: &[u8]) -> Result<T, StoreError> {
        decode(key, value).map_err(|e| match e {
            StoreError::Corrupt { reason, .. } => StoreError::Corrupt {
                path: self.raw.locate(key),
                reason,
            },
            other => other,
        })
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.raw.get(key).await? {
            Some(v) => decode(key, &v).map(Some),
            None => Ok(None),
        }
    }
}

/// Records to write together (see [`Store::commit`]).
#[derive(Debug, Default)]
pub struct StoreBatch {
    writes: Vec<(Rec, Option<Vec<u8>>)>,
    /// The first record that failed to encode; it fails the whole commit.
    error: Option<StoreError>,
}

#[derive(Debug)]
enum Rec {
    Group(u32),
    Slot(u32),
    Sentinel,
    SlotAction,
    Proxy(String),
}

impl StoreBatch {
    /// Whether committing it would write nothing (and fail on nothing).
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.error.is_none()
    }

    /// Creates or replaces a group.
    pub fn put_group(&mut self, g: &Group) {
        self.put(Rec::Group(g.id), g);
    }

    /// Deletes a group.
    pub fn delete_group(&mut self, id: u32) {
        self.writes.push((Rec::Group(id), None));
    }

    /// Writes a slot mapping.
    pub fn put_slot(&mut self, m: &SlotMapping) {
        self.put(Rec::Slot(m.id), m);
    }

    /// Replaces the sentinel list.
    pub fn put_sentinel(&mut self, s: &Sentinel) {
        self.put(Rec::Sentinel, s);
    }

    /// Replaces the slot-action settings.
    pub fn put_slot_action_config(&mut self, c: &SlotActionConfig) {
        self.put(Rec::SlotAction, c);
    }

    /// Creates or replaces a proxy.
    pub fn put_proxy(&mut self, x: &Proxy) {
        self.put(Rec::Proxy(x.token.clone()), x);
    }

    /// Deletes a proxy.
    pub fn delete_proxy(&mut self, token: &str) {
        self.writes.push((Rec::Proxy(token.to_owned()), None));
    }

    fn put<T: Serialize>(&mut self, rec: Rec, value: &T) {
        match encode(value) {
            Ok(bytes) => self.writes.push((rec, Some(bytes))),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// Codis stores records pretty-printed with a 4-space indent; so do we.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(256);
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value.serialize(&mut ser).map_err(|e| StoreError::Corrupt {
        path: String::new(),
        reason: format!("encode: {e}"),
    })?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        path: key.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    //! Golden bytes: what the facade stores must stay byte-for-byte what Codis
    //! writes (4-space indent, Codis field names and order).

    use super::*;
    use crate::model::{
        GroupServer, PromoteState, Promoting, ServerKind, SlotAction, SlotState, SyncAction,
        SyncState,
    };
    use crate::store::memory::MemoryStore;

    fn facade() -> (Arc<MemoryStore>, Store) {
        let raw = Arc::new(MemoryStore::new());
        (raw.clone(), Store::new(raw, "demo"))
    }

    async fn stored(raw: &MemoryStore, key: &str) -> String {
        let bytes = raw.get(key).await.unwrap().expect("record not written");
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn golden_slot_mappings() {
        let (raw, store) = facade();
        let idle = SlotMapping {
            id: 7,
            group_id: 2,
            action: None,
        };
        let moving = SlotMapping {
            id: 8,
            group_id: 1,
            action: Some(SlotAction {
                index: 3,
                state: SlotState::Migrating,
                target_id: 2,
            }),
        };
        store.update_slots(&[idle, moving]).await.unwrap();
        assert_eq!(
            stored(&raw, "/codis3/demo/slots/slot-0007").await,
            "{\n    \"id\": 7,\n    \"group_id\": 2,\n    \"action\": {}\n}"
        );
        assert_eq!(
            stored(&raw, "/codis3/demo/slots/slot-0008").await,
            r#"{
    "id": 8,
    "group_id": 1,
    "action": {
        "index": 3,
        "state": "migrating",
        "target_id": 2
    }
}"#
        );
    }

    #[tokio::test]
    async fn golden_group() {
        let (raw, store) = facade();
        let mut replica = GroupServer::new("127.0.0.1:6380", "", ServerKind::Unknown);
        replica.replica_group = true;
        replica.action = Some(SyncAction {
            index: 2,
            state: SyncState::Pending,
            error: String::new(),
        });
        let group = Group {
            id: 1,
            servers: vec![
                GroupServer::new("127.0.0.1:6379", "dc1", ServerKind::Redis),
                replica,
            ],
            promoting: Some(Promoting {
                index: 1,
                state: PromoteState::Preparing,
            }),
            out_of_sync: false,
        };
        store.update_group(&group).await.unwrap();
        assert_eq!(
            stored(&raw, "/codis3/demo/group/group-0001").await,
            r#"{
    "id": 1,
    "servers": [
        {
            "server": "127.0.0.1:6379",
            "datacenter": "dc1",
            "action": {},
            "replica_group": false,
            "kind": "redis"
        },
        {
            "server": "127.0.0.1:6380",
            "datacenter": "",
            "action": {
                "index": 2,
                "state": "pending"
            },
            "replica_group": true
        }
    ],
    "promoting": {
        "index": 1,
        "state": "preparing"
    },
    "out_of_sync": false
}"#
        );
        store.update_group(&Group::new(2)).await.unwrap();
        assert_eq!(
            stored(&raw, "/codis3/demo/group/group-0002").await,
            r#"{
    "id": 2,
    "servers": [],
    "promoting": {},
    "out_of_sync": false
}"#
        );
    }

    #[tokio::test]
    async fn golden_sentinel() {
        let (raw, store) = facade();
        store
            .update_sentinel(&Sentinel {
                servers: vec!["127.0.0.1:26379".into(), "127.0.0.1:26380".into()],
                out_of_sync: true,
            })
            .await
            .unwrap();
        assert_eq!(
            stored(&raw, "/codis3/demo/sentinel").await,
            r#"{
    "servers": [
        "127.0.0.1:26379",
        "127.0.0.1:26380"
    ],
    "out_of_sync": true
}"#
        );
        store.update_sentinel(&Sentinel::default()).await.unwrap();
        assert_eq!(
            stored(&raw, "/codis3/demo/sentinel").await,
            "{\n    \"out_of_sync\": false\n}"
        );
    }

    #[tokio::test]
    async fn load_keys_groups_and_proxies_by_their_records() {
        let (raw, store) = facade();
        raw.put(
            "/codis3/demo/group/group-0003",
            &encode(&Group::new(3)).unwrap(),
        )
        .await
        .unwrap();
        let proxy = Proxy {
            token: "t1".into(),
            ..Proxy::default()
        };
        raw.put("/codis3/demo/proxy/proxy-t1", &encode(&proxy).unwrap())
            .await
            .unwrap();
        let data = store.load().await.unwrap();
        assert_eq!(data.groups.keys().copied().collect::<Vec<_>>(), [3]);
        assert_eq!(data.proxies.keys().cloned().collect::<Vec<_>>(), ["t1"]);
        assert_eq!(data.slots.len(), MAX_SLOTS);

        raw.put(
            "/codis3/demo/group/group-0000",
            &encode(&Group::new(0)).unwrap(),
        )
        .await
        .unwrap();
        match store.load().await {
            Err(StoreError::Corrupt { path, .. }) => {
                assert_eq!(path, "/codis3/demo/group/group-0000");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
