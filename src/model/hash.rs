//! Key → slot hashing, shared with proxies and codis-server.

use super::MAX_SLOTS;

/// The bytes of `key` that are hashed: those between the first `{` and the next `}`
/// after it (possibly empty), or the whole key when there is no such pair.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The slot of `key`: crc32 (IEEE) of its hash tag, modulo 1024.
pub fn slot_of(key: &[u8]) -> u32 {
    crc32fast::hash(hash_tag(key)) & (MAX_SLOTS as u32 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(hash_tag(b"foo"), b"foo");
        assert_eq!(hash_tag(b"{user1}.name"), b"user1");
        assert_eq!(hash_tag(b"a{b}c{d}"), b"b");
        assert_eq!(hash_tag(b"a{}b"), b"");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"a}b{c}"), b"c");
        assert_eq!(hash_tag(b""), b"");
    }

    #[test]
    fn slots_match_crc32_ieee() {
        // crc32("123456789") = 0xCBF43926 (the IEEE check value); & 1023 = 0x126.
        assert_eq!(slot_of(b"123456789"), 0xCBF4_3926 & 1023);
        assert_eq!(slot_of(b"{123456789}.x"), slot_of(b"123456789"));
        assert_eq!(slot_of(b"x{}"), crc32fast::hash(b"") & 1023);
        for k in [&b"a"[..], b"hello", b"{tag}"] {
            assert!(slot_of(k) < 1024);
        }
    }
}
