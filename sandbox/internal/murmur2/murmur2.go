// Package murmur2 is the Java Kafka client's murmur2 hash and partitioner,
// which ksqlDB, Kafka Streams and Java producers use to place keyed records.
// Test doubles and checks use it; the production producer relies on
// librdkafka's murmur2_random partitioner, which computes the same thing.
package murmur2

// Hash returns org.apache.kafka.common.utils.Utils.murmur2(data).
func Hash(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// Partition returns the partition a Java producer picks for a record with
// this serialized key: (murmur2(key) & 0x7fffffff) % partitions.
func Partition(key []byte, partitions int32) int32 {
	return (Hash(key) & 0x7fffffff) % partitions
}
