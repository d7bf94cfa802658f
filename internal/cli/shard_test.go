package cli

import (
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// A shard's run holds every row its source hands over
// to the shard's rule, |key mod N| = i (NULL keys: shard 0), whatever the
// read path; a row of another shard stops the run before it is encoded.
func TestAShardStopsAtAnotherShardsRow(t *testing.T) {
	w := &world{rows: 10} // users 1..10: user 1 is shard 1's, user 2 shard 2's
	c := testConfig()
	c.Shard.Index, c.Shard.Count = 1, 3
	rep, err := w.run(t, c, false)
	if err == nil || backfill.KindOf(err) != backfill.KindContract {
		t.Fatalf("shard 1 of 3 was handed users of every shard: err %v, %d records produced; want a contract error", err, rep.RecordsProduced)
	}
	for _, want := range []string{"key 2", "shard 2", "shard 1 of 3", `"memory"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if rep.RecordsProduced != 0 {
		t.Fatalf("%d records produced; the batch holding another shard's row must not be", rep.RecordsProduced)
	}
}
