package main

import (
	"context"
	"testing"

	"tokenledger/internal/nodetest"
)

// make bench's region line measures what it says: a revoke at the hub is
// refused by the regional node, for every token it revokes.
func TestRegionRevokeLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a hub and a region")
	}
	signer, trust := nodetest.MustKeys(t)
	lat, err := regionRevokeLatency(context.Background(), t.TempDir(), signer, trust, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 20 {
		t.Fatalf("%d revokes timed, want 20", len(lat))
	}
	t.Logf("p50 %s, p99 %s", pct(lat, 50), pct(lat, 99))
}
