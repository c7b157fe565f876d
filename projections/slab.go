package projections

import (
	"hash/maphash"
	"math/bits"

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

// maxRun is the most chunks a slab allocates at once (40 MB).
const maxRun = 64

// add makes room for one more token and returns its place. A slab of more
// than a few chunks grows by an eighth at a time, in one allocation sliced
// into chunks: a large slab then lies in long runs of memory, which the
// kernel can back with huge pages (see Table.UseHugePages), at the cost of
// at most an eighth of it unused.
func (s *slab) add() (ref, *token) {
	if s.n == len(s.chunks)*chunkSize {
		s.grow(min(max(len(s.chunks)/8, 1), maxRun), false)
	}
	s.n++
	return ref(s.n), s.at(ref(s.n))
}

// reserve makes room for n more tokens, no more, in runs of chunks: for a
// snapshot's decoding, which knows how many come, and fills them at once, on
// huge pages from the first write (see adviseHuge).
func (s *slab) reserve(n int) {
	for need := (s.n+n+chunkSize-1)/chunkSize - len(s.chunks); need > 0; need -= maxRun {
		s.grow(min(need, maxRun), true)
	}
}

// grow adds chunks to the slab, in one run of memory, asked to be backed by
// huge pages from the first write when huge (see adviseHuge). A live table's
// growth is not: a token applied under the table's lock would then wait for
// a whole huge page to be zeroed, or memory compacted to find one, and the
// node moves the run there afterwards (Table.UseHugePages).
func (s *slab) grow(chunks int, huge bool) {
	run := make([]token, chunks*chunkSize)
	if huge {
		adviseHuge(spanOf(run))
	}
	for c := range chunks {
		s.chunks = append(s.chunks, run[c*chunkSize:(c+1)*chunkSize:(c+1)*chunkSize])
	}
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
// caches. At the index's load (a sixth to a half), a walk that finds its
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
	return x.homeOf(maphash.Bytes(x.seed, h[:]))
}

// homeOf is home, from h's seeded hash m: its low bits pick the slot, its
// high 32 are the tag. Every walk and every put starts here.
func (x *hashIndex) homeOf(m uint64) (uint64, uint32) {
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
	return x.place(s, r, maphash.Bytes(x.seed, s.at(r).hash[:]))
}

// place is put, with the hash's hash m already known.
func (x *hashIndex) place(s *slab, r ref, m uint64) bool {
	mask := uint64(len(x.slots) - 1)
	i, tag := x.homeOf(m)
	for ; ; i = (i + 1) & mask {
		switch e := x.slots[i]; {
		case e == 0:
			x.slots[i] = slot(tag)<<32 | slot(r)
			x.used++
			return true
		case e.tag() == tag && s.at(e.ref()).hash == s.at(r).hash:
			return false
		}
	}
}

// rebuild indexes every token of the slab that belongs to an account, in
// slots enough for the index to grow by half before it grows again; false if two
// tokens have the same hash.
func (x *hashIndex) rebuild(s *slab) bool {
	b := x.building(s.n)
	for i, chunk := range s.chunks {
		if i*chunkSize >= s.n {
			break
		}
		b.add(ref(i*chunkSize+1), chunk[:min(chunkSize, s.n-i*chunkSize)])
	}
	return b.finish(s)
}

// indexBuild builds a hash index anew. It puts the tokens in the order of
// their home slots, a stretch of the index at a time (a counting sort by
// the stretch), not in the slab's order: at ten million tokens the index is
// 256 MiB, and in the slab's order every put missed the CPU's caches, 2.3 of
// a start's 4.3 s of decoding; in the index's order the puts walk it from
// one end to the other. Linear probing finds a token whatever the order it
// was put in. The tokens' seeded hashes are taken as the tokens come (add),
// which a snapshot's decoding does while it reads the rest, and put in place
// at the end (finish). It holds 20 bytes a token while it runs.
type indexBuild struct {
	x       *hashIndex
	shift   uint     // a home slot >> shift is its stretch
	counts  []int    // tokens whose home is in each stretch
	hashes  []uint64 // each token's seeded hash, by ref-1
	dropped []uint64 // a bit for each token in no account, by ref-1
}

// stretchSlots is the size of a stretch: 128 KiB of slots, which a core's
// cache holds well.
const stretchSlots = 1 << 14

// building empties x, makes it the size for n tokens, and starts building
// it; the tokens are then added in the slab's order. The index has room for
// half as many again before it is full: a third of its slots at most are
// taken. (With room to double, ten million tokens took 512 MiB of slots, a
// sixth of them used, and a start from a snapshot wrote them all: on the
// project's virtual machine a first write costs about a second a gigabyte.)
func (x *hashIndex) building(n int) *indexBuild {
	size := 16
	for size < 3*(n+1) {
		size *= 2
	}
	x.slots, x.used = make([]slot, size), 0
	adviseHuge(spanOf(x.slots))
	stretches := max(size/stretchSlots, 1)
	b := &indexBuild{x: x, shift: uint(bits.Len(uint(size/stretches)) - 1),
		counts: make([]int, stretches), hashes: make([]uint64, 0, n), dropped: make([]uint64, 0, n/64+1)}
	adviseHuge(spanOf(b.hashes[:n]))
	return b
}

// stretch is the stretch of the home of the seeded hash m.
func (b *indexBuild) stretch(m uint64) int {
	home, _ := b.x.homeOf(m)
	return int(home >> b.shift)
}

// add takes the tokens that follow those added before, from first on.
func (b *indexBuild) add(first ref, toks []token) {
	if int(first) != len(b.hashes)+1 {
		panic("projections: tokens added to an index out of order")
	}
	for i := range toks {
		var m uint64
		if n := len(b.hashes); n%64 == 0 {
			b.dropped = append(b.dropped, 0)
		}
		if tok := &toks[i]; tok.account == dropped {
			b.dropped[len(b.hashes)/64] |= 1 << (len(b.hashes) % 64)
		} else {
			m = maphash.Bytes(b.x.seed, tok.hash[:])
			b.counts[b.stretch(m)]++
		}
		b.hashes = append(b.hashes, m)
	}
}

// finish puts every added token in place; false if two have the same hash.
func (b *indexBuild) finish(s *slab) bool {
	if len(b.hashes) != s.n {
		panic("projections: an index built of fewer tokens than the slab holds")
	}
	next := b.counts // where each stretch's next token goes
	at := 0
	for i, n := range b.counts {
		next[i], at = at, at+n
	}
	refs, hashes := make([]ref, at), make([]uint64, at)
	adviseHuge(spanOf(refs))
	adviseHuge(spanOf(hashes))
	for i, m := range b.hashes {
		if b.dropped[i/64]&(1<<(i%64)) == 0 {
			k := &next[b.stretch(m)]
			refs[*k], hashes[*k] = ref(i+1), m
			*k++
		}
	}
	b.hashes, b.dropped = nil, nil
	unique := true
	for i, r := range refs {
		unique = b.x.place(s, r, hashes[i]) && unique
	}
	return unique
}

// indexFeed builds a hash index on a goroutine of its own while a snapshot's
// decoding fills the slab (see DecodeTable): the decoding hands it each
// chunk once full, and the goroutine takes the chunk's hashes meanwhile.
type indexFeed struct {
	chunks  chan []token
	result  chan bool
	sent    int  // tokens handed on
	finish  bool // set before chunks is closed: put the tokens in place
	stopped bool
}

// feeding starts building x for the n tokens of s to come.
func (x *hashIndex) feeding(s *slab, n int) *indexFeed {
	f := &indexFeed{chunks: make(chan []token, 8), result: make(chan bool, 1)}
	b := x.building(n)
	go func() {
		first := ref(1)
		for toks := range f.chunks {
			b.add(first, toks)
			first += ref(len(toks))
		}
		f.result <- f.finish && b.finish(s)
	}()
	return f
}

// filled hands on the slab's chunk if its last token was just written.
func (f *indexFeed) filled(s *slab) {
	if s.n%chunkSize == 0 {
		f.send(s)
	}
}

// send hands on the tokens written since it last did.
func (f *indexFeed) send(s *slab) {
	for f.sent < s.n {
		c := f.sent / chunkSize
		upTo := min(s.n, (c+1)*chunkSize)
		f.chunks <- s.chunks[c][f.sent-c*chunkSize : upTo-c*chunkSize]
		f.sent = upTo
	}
}

// end hands on the rest of the slab and has the tokens put in place; wait
// then says whether their hashes were all distinct.
func (f *indexFeed) end(s *slab) {
	if f.stopped {
		return
	}
	f.send(s)
	f.finish, f.stopped = true, true
	close(f.chunks)
}

func (f *indexFeed) wait() bool { return <-f.result }

// stop ends the goroutine without an index, unless end has: for a decoding
// that failed.
func (f *indexFeed) stop() {
	if !f.stopped {
		f.stopped = true
		close(f.chunks)
		<-f.result
	}
}
