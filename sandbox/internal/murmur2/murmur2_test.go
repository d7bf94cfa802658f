package murmur2

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Vectors from Apache Kafka's UtilsTest.testMurmur2.
func TestHashMatchesJavaVectors(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := Hash([]byte(in)); got != want {
			t.Errorf("Hash(%q) = %d, want %d", in, got, want)
		}
	}
}

// franz-go's default key partitioner is Kafka's murmur2: an independent
// implementation to cross-check against on random keys of every length.
func TestPartitionMatchesFranzGo(t *testing.T) {
	topic := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		key := make([]byte, rng.IntN(20))
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		if len(key) == 0 {
			continue // franz-go sends nil/empty keys to the sticky path
		}
		n := int32(1 + rng.IntN(64))
		if got, want := Partition(key, n), int32(topic.Partition(&kgo.Record{Key: key}, int(n))); got != want {
			t.Fatalf("Partition(%x, %d) = %d, franz-go says %d", key, n, got, want)
		}
	}
}
