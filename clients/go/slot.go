package topom

import (
	"bytes"
	"hash/crc32"
)

// SlotCount is the number of slots of a topom product; slot ids are 0..SlotCount-1.
const SlotCount = 1024

// HashTag returns the bytes of key that are hashed: those between the first
// '{' and the next '}' after it (possibly none, for "{}"), or the whole key
// when there is no such pair. This is the Codis rule, which topom follows; it
// differs from Redis Cluster, where an empty "{}" hashes the whole key.
func HashTag(key []byte) []byte {
	open := bytes.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	n := bytes.IndexByte(key[open+1:], '}')
	if n < 0 {
		return key
	}
	return key[open+1 : open+1+n]
}

// SlotOf maps a key to its slot exactly as topom does: crc32 (IEEE) of
// HashTag(key), modulo SlotCount.
func SlotOf(key []byte) int {
	return int(crc32.ChecksumIEEE(HashTag(key)) & (SlotCount - 1))
}
