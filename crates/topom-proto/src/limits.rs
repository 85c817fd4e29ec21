//! Limits of the API that both ends check: the server refuses what breaks them,
//! the CLI refuses it before sending.

/// Slots in a product (Codis `MaxSlotNum`); slot ids are `0..MAX_SLOTS`.
pub const MAX_SLOTS: u32 = 1024;

/// The highest group id (Codis `MaxGroupId`); group ids are `1..=MAX_GROUP_ID`.
pub const MAX_GROUP_ID: u32 = 9999;
