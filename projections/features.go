package projections

import "strings"

// A token's features are kept as a number in the token (see slab.go: the
// slab holds no pointers), the place of its set in a list of every set any
// token has had. Tokens share few sets (the ones a panel offers, a few
// hand-made ones), so a million tokens cost four bytes each and the sets a
// few kilobytes, and a validation that needs a feature reads one short
// sorted slice. Sets are never changed once listed, so a validation may
// read one after it has let go of the table's lock.

// featureSets interns sets of features: sets[0] is nil, full access. A set
// is listed once, the first time a token has it, and stays listed while the
// table lives; a snapshot keeps only the sets tokens have (see Encode).
type featureSets struct {
	sets [][]string
	ids  map[string]uint32 // a set's key -> its place in sets
}

// featureKey is a set's key: its names joined by commas, which no name holds.
func featureKey(set []string) string { return strings.Join(set, ",") }

// intern is the place of set, sorted and without repeats as
// events.ParseFeatures makes it, listing it if it is new; 0 for no features.
// The caller holds both of the table's locks.
func (f *featureSets) intern(set []string) uint32 {
	if len(set) == 0 {
		return 0
	}
	if f.sets == nil {
		f.sets, f.ids = [][]string{nil}, make(map[string]uint32)
	}
	key := featureKey(set)
	if id, ok := f.ids[key]; ok {
		return id
	}
	id := uint32(len(f.sets))
	f.sets = append(f.sets, strings.Split(key, ",")) // a copy of its own, which no caller can change
	f.ids[key] = id
	return id
}

// of is the set at id: nil for 0, full access.
func (f *featureSets) of(id uint32) []string {
	if id == 0 {
		return nil
	}
	return f.sets[id]
}
