package stack

import (
	"math/rand/v2"
)

// Order is one row of the synthetic orders table. A nil UserID is a row
// whose user is NULL (a guest checkout).
type Order struct {
	UserID  *int64
	OrderID int64
}

// Orders generates the synthetic orders table: users 1..users, each with
// 1..perUser orders whose ids grow with gaps and interleave between users,
// plus nullUsers rows with a NULL user. The same seed gives the same table.
func Orders(users, perUser, nullUsers int, seed uint64) []Order {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var out []Order
	next := int64(1000)
	for u := 1; u <= users; u++ {
		n := 1 + rng.IntN(max(perUser, 1))
		for range n {
			next += 1 + int64(rng.IntN(50)) // gaps between order ids
			uid := int64(u)
			out = append(out, Order{UserID: &uid, OrderID: next})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for range nullUsers {
		next += 7
		out = append(out, Order{OrderID: next})
	}
	return out
}

// MinOrders returns MIN(order_id) per user: what table_min_order must hold.
func MinOrders(orders []Order) map[int64]int64 {
	m := map[int64]int64{}
	for _, o := range orders {
		if o.UserID == nil {
			continue
		}
		if cur, ok := m[*o.UserID]; !ok || o.OrderID < cur {
			m[*o.UserID] = o.OrderID
		}
	}
	return m
}
