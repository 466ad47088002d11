package wal

import (
	"slices"

	pb "github.com/raftcore/raft/raftpb"
)

// The groups of a MultiLog share one cache of recently saved entries,
// Options.CacheSize bytes in all: each group keeps the entries of its
// latest Saves, and the oldest Saves' entries, whatever their group, are
// dropped first. Readers hold mu (read), writers mu and wmu.

// cacheRef is one Save's entries of one group in the cache, in the order
// of the Saves: the group's cached entries up to upTo came with it.
type cacheRef struct {
	g     *GroupStorage
	upTo  uint64
	bytes int
}

// cacheAppend adds the entries g just saved to its cache (they replace
// any cached from ents[0].Index on) and drops the oldest if the cache is
// over its size. Holds mu and wmu.
func (ml *MultiLog) cacheAppend(g *GroupStorage, ents []pb.Entry) {
	if ml.opts.CacheSize < 0 {
		return
	}
	first := ents[0].Index
	switch end := g.cacheFirst + uint64(len(g.cache)); {
	case len(g.cache) == 0 || first < g.cacheFirst || first > end:
		g.cache, g.cacheFirst = nil, first
	case first < end:
		// Replacing a suffix: copy on append, a reader may hold the old
		// entries.
		g.cache = slices.Clip(g.cache[:first-g.cacheFirst])
	}
	g.cache = append(g.cache, ents...)
	n := 0
	for i := range ents {
		n += ents[i].Size()
	}
	ml.cacheQ = append(ml.cacheQ, cacheRef{g: g, upTo: ents[len(ents)-1].Index, bytes: n})
	ml.cacheBytes += n
	for ml.cacheBytes > ml.opts.CacheSize && ml.cacheHead < len(ml.cacheQ) {
		r := ml.cacheQ[ml.cacheHead]
		ml.cacheQ[ml.cacheHead] = cacheRef{}
		ml.cacheHead++
		ml.cacheBytes -= r.bytes
		r.g.cacheDrop(r.upTo)
	}
	if ml.cacheHead > len(ml.cacheQ)/2 {
		ml.cacheQ = append(ml.cacheQ[:0], ml.cacheQ[ml.cacheHead:]...)
		ml.cacheHead = 0
	}
}

// cacheDrop drops g's cached entries up to index i. Holds mu.
func (g *GroupStorage) cacheDrop(i uint64) {
	if len(g.cache) == 0 || i < g.cacheFirst {
		return
	}
	drop := min(i+1-g.cacheFirst, uint64(len(g.cache)))
	g.cache = g.cache[drop:]
	g.cacheFirst += drop
	if len(g.cache) == 0 {
		g.cache = nil
	}
}

// cached returns the entries [lo, hi) that are in g's cache, from the
// first of them: nil if lo is before the cache, else the entries from
// max(lo, cacheFirst). Holds mu.
func (g *GroupStorage) cached(lo, hi uint64) []pb.Entry {
	if len(g.cache) == 0 || hi <= g.cacheFirst {
		return nil
	}
	from := max(lo, g.cacheFirst) - g.cacheFirst
	to := hi - g.cacheFirst
	return g.cache[from:to:to]
}
