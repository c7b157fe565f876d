package projections

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"tokenledger/events"
)

func TestHugeBlocksStayInsideTheTable(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name         string
		spans, wants []span
	}{
		{"one span, rounded in", []span{{3 * mb, 9*mb + 1}}, []span{{4 * mb, 8 * mb}}},
		{"touching spans joined", []span{{9 * mb, 12*mb + mb/2}, {3 * mb, 9 * mb}}, []span{{4 * mb, 12 * mb}}},
		{"overlapping spans joined", []span{{2 * mb, 5 * mb}, {3 * mb, 4 * mb}, {4 * mb, 6 * mb}}, []span{{2 * mb, 6 * mb}}},
		{"a gap between spans stays out", []span{{0, 3 * mb}, {3*mb + 1, 8 * mb}}, []span{{0, 2 * mb}, {4 * mb, 8 * mb}}},
		{"no whole huge page", []span{{1 * mb, 3 * mb}, {5 * mb, 5*mb + 4096}}, nil},
		{"nothing", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := hugeBlocks(c.spans); !slices.Equal(got, c.wants) {
				t.Errorf("hugeBlocks(%v) = %v, want %v", c.spans, got, c.wants)
			}
		})
	}
}

// hugeTable is a table of n tokens in 100 accounts, and their secrets.
func hugeTable(t *testing.T, n int) (*Table, []string) {
	tab := NewTable(DefaultWarn)
	var f fixture
	secrets := make([]string, n)
	for i := range secrets {
		secrets[i] = events.NewSecret()
		f.apply(t, tab, uint64(i+1), f.create(fmt.Sprintf("acct%d", i%100), fmt.Sprintf("t%d", i), secrets[i], nil))
	}
	return tab, secrets
}

// Moving the table to huge pages while validations run changes no answer:
// the kernel copies the memory under the table's feet.
func TestUseHugePagesKeepsEveryToken(t *testing.T) {
	// 140,000 tokens: an index of 8 MiB, which holds whole huge pages
	// wherever it lies.
	tab, secrets := hugeTable(t, 140_000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for g := range 2 {
		wg.Go(func() {
			for i := g; ctx.Err() == nil; i = (i + 2) % len(secrets) {
				if r := tab.Validate(secrets[i], fmt.Sprintf("acct%d", i%100), time.Now()); !r.Valid {
					errs <- fmt.Errorf("token %d while moving: %+v", i, r)
					return
				}
			}
		})
	}
	hp := tab.UseHugePages(context.Background())
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("asked %d MiB, backed %d MiB", hp.Asked>>20, hp.Backed>>20)
	if hp.Asked < hugePage || hp.Backed > hp.Asked {
		t.Errorf("asked %d bytes, backed %d: want at least a huge page asked, and no more backed", hp.Asked, hp.Backed)
	}
	for i, s := range secrets {
		if r := tab.Validate(s, fmt.Sprintf("acct%d", i%100), time.Now()); !r.Valid {
			t.Fatalf("token %d after: %+v", i, r)
		}
	}
}

func TestUseHugePagesStopsWithItsContext(t *testing.T) {
	tab, _ := hugeTable(t, 140_000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if hp := tab.UseHugePages(ctx); hp.Backed != 0 || hp.Asked == 0 {
		t.Errorf("with its context ended: %+v, want something asked and nothing backed", hp)
	}
}

// The footprint is the index and slab as allocated: it moves when one of
// them grows, and not with each token.
func TestFootprintMovesWhenTheTableGrows(t *testing.T) {
	tab := NewTable(DefaultWarn)
	if have := tab.Footprint(); have != 0 {
		t.Fatalf("empty table: footprint %d, want 0", have)
	}
	var f fixture
	prev, moves := int64(0), 0
	for i := range 2 * chunkSize {
		f.apply(t, tab, uint64(i+1), f.create("bob", fmt.Sprintf("t%d", i), events.NewSecret(), nil))
		have := tab.Footprint()
		// At least a whole chunk of tokens and two 8-byte slots a token.
		if least := int64(chunkSize)*int64(unsafe.Sizeof(token{})) + int64(i+1)*16; have < least {
			t.Fatalf("after %d tokens: footprint %d, want at least %d", i+1, have, least)
		}
		if have < prev {
			t.Fatalf("after %d tokens: footprint shrank from %d to %d", i+1, prev, have)
		}
		if have != prev {
			moves++
		}
		prev = have
	}
	// The index doubles from 16 slots to 16,384, and the slab takes two chunks:
	// a dozen or so growths, against 8,192 tokens.
	if moves < 3 || moves > 20 {
		t.Errorf("footprint moved %d times over %d tokens, want a growth's handful", moves, 2*chunkSize)
	}
}
