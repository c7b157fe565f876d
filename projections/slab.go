package projections

import (
	"hash/maphash"

	"tokenledger/events"
)

// The table keeps its tokens where the garbage collector has nothing to
// follow: in chunks of structs without pointers (a slab), found through an
// index of slab references (and each account's live tokens are a map of
// references). A million tokens are then a few hundred large objects that a
// collection need not scan, rather than millions of small ones it marks
// again every cycle. In `make bench`'s validation rounds at a
// million tokens, a collection took about 0.9 s of CPU every 6 s with the
// tokens in Go maps of pointers, and 0.18 s with the slab. A validation also
// touched the map's directory, its group, the token and its account, each a
// likely cache miss, where it now touches a slot and a token.

// ref is a token's place in the slab, plus one: 0 is no token. Four billion
// tokens is beyond what a snapshot may hold (MaxSnapshot).
type ref uint32

const (
	chunkBits = 12 // 4,096 tokens, about 600 KB, a chunk
	chunkSize = 1 << chunkBits
)

// slab holds every token the table ever created, revoked ones too, in chunks
// that never move.
type slab struct {
	chunks [][]token
	n      int
}

// add makes room for one more token and returns its place.
func (s *slab) add() (ref, *token) {
	if s.n == len(s.chunks)*chunkSize {
		s.chunks = append(s.chunks, make([]token, chunkSize))
	}
	s.n++
	return ref(s.n), s.at(ref(s.n))
}

func (s *slab) at(r ref) *token {
	i := int(r) - 1
	return &s.chunks[i>>chunkBits][i&(chunkSize-1)]
}

// hashIndex finds a token by its secret's hash: an open-addressing table of
// slab references, where a hash's slot is chosen with a seed of the table's
// own (so that no stream can pile its hashes into one run of slots) and a
// lookup walks on from there to an empty slot. Each token is indexed under
// its current hash. A slot left behind by a rotation still points at its
// token, whose hash has moved on; lookups pass over it, and the next growth
// drops it.
//
// A slot also holds 32 more bits of its hash's seeded hash (a tag), so that
// a walk reads a token from the slab only when its tag matches: nearly
// always the token sought. At a million tokens every token read misses the
// caches. At the index's load (a quarter to a half), a walk that finds its
// token passes 1.2 to 1.5 slots on average and one that does not (a new
// token) 1.4 to 2.5, and without tags each slot passed meant a token read.
// BenchmarkValidateMillion: about 1.07 µs a validation, against 1.22 µs
// without tags. The price is 4 bytes a slot, 8 to 16 a token.
type hashIndex struct {
	seed  maphash.Seed
	slots []slot
	used  int // slots filled, the ones left behind too
}

// slot is a ref in its low 32 bits and a tag in its high ones; 0 is empty.
type slot uint64

func (e slot) ref() ref    { return ref(e) }
func (e slot) tag() uint32 { return uint32(e >> 32) }

func newHashIndex() hashIndex { return hashIndex{seed: maphash.MakeSeed()} }

// home is the slot where h's walk starts, and h's tag.
func (x *hashIndex) home(h events.Hash) (uint64, uint32) {
	m := maphash.Bytes(x.seed, h[:])
	return m & uint64(len(x.slots)-1), uint32(m >> 32)
}

// find is the token indexed under h, or 0.
func (x *hashIndex) find(s *slab, h events.Hash) ref {
	if len(x.slots) == 0 {
		return 0
	}
	mask := uint64(len(x.slots) - 1)
	i, tag := x.home(h)
	for ; ; i = (i + 1) & mask {
		e := x.slots[i]
		if e == 0 || e.tag() == tag && s.at(e.ref()).hash == h {
			return e.ref()
		}
	}
}

// full says whether one more entry would fill the index past half, where
// walks grow long: Table.lockToApply grows it before each change.
func (x *hashIndex) full() bool { return 2*(x.used+1) > len(x.slots) }

// put indexes the token at r under its hash, in the first free slot from its
// home; false if a token with the same hash was there already. The index
// must not be full.
func (x *hashIndex) put(s *slab, r ref) bool {
	h := s.at(r).hash
	mask := uint64(len(x.slots) - 1)
	i, tag := x.home(h)
	for ; ; i = (i + 1) & mask {
		switch e := x.slots[i]; {
		case e == 0:
			x.slots[i] = slot(tag)<<32 | slot(r)
			x.used++
			return true
		case e.tag() == tag && s.at(e.ref()).hash == h:
			return false
		}
	}
}

// rebuild indexes every token of the slab that belongs to an account, in
// slots enough for the index to double before it grows again; false if two
// tokens have the same hash.
func (x *hashIndex) rebuild(s *slab) bool {
	size := 16
	for size < 4*(s.n+1) {
		size *= 2
	}
	x.slots, x.used = make([]slot, size), 0
	unique := true
	for r := ref(1); int(r) <= s.n; r++ {
		if s.at(r).account != dropped {
			unique = x.put(s, r) && unique
		}
	}
	return unique
}
