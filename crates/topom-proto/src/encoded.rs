//! Responses that are already encoded.
//!
//! The slot table changes rarely and is read often (every proxy, every CLI call,
//! monitoring): encoding 1024 slots per call would dominate the cost of ListSlots.
//! Likewise a stats round goes to every unfiltered WatchStats subscriber and
//! GetStats caller. Each is encoded once, and this type hands the bytes to the
//! codec as they are.

use bytes::{BufMut, Bytes};

/// The protobuf encoding of a message (a `ListSlotsResponse`, a
/// `GetStatsResponse` or a `WatchStatsResponse`).
#[derive(Clone, Default, PartialEq)]
pub struct Encoded(pub Bytes);

impl Encoded {
    /// Encodes `m` once.
    pub fn of(m: &impl prost::Message) -> Encoded {
        Encoded(Bytes::from(m.encode_to_vec()))
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoded({} bytes)", self.0.len())
    }
}

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        _tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // The server only ever encodes this type; decoding (clients use the
        // generated ListSlotsResponse) has nothing to keep.
        prost::encoding::skip_field(wire_type, _tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}
