package wal

// locIndex is the in-memory index of the live log, one loc per entry, in
// fixed-size chunks: growing it never copies more than one chunk (a large
// log's index is not copied under the lock readers wait on), and dropping
// a compacted prefix frees whole chunks. The first chunk starts small and
// grows, so that the short logs of many groups sharing a MultiLog stay
// small.
type locIndex struct {
	// chunks hold the locs from chunks[0][skip] on; every chunk but the
	// last has indexChunk elements, the last up to that.
	chunks [][]loc
	skip   int
	n      int
}

const (
	indexChunkBits = 10
	indexChunk     = 1 << indexChunkBits
	// firstChunkCap is the capacity a log's first chunk starts with.
	firstChunkCap = 4
)

func (x *locIndex) len() int { return x.n }

// at returns the i-th loc (0-based).
func (x *locIndex) at(i int) loc {
	j := x.skip + i
	return x.chunks[j>>indexChunkBits][j&(indexChunk-1)]
}

func (x *locIndex) append(l loc) {
	c := (x.skip + x.n) >> indexChunkBits
	if c == len(x.chunks) {
		size := indexChunk
		if c == 0 {
			size = firstChunkCap
		}
		x.chunks = append(x.chunks, make([]loc, 0, size))
	}
	chunk := x.chunks[c]
	if len(chunk) == cap(chunk) {
		grown := make([]loc, len(chunk), min(2*cap(chunk), indexChunk))
		copy(grown, chunk)
		chunk = grown
	}
	x.chunks[c] = append(chunk, l)
	x.n++
}

// truncate keeps the first n locs.
func (x *locIndex) truncate(n int) {
	x.n = n
	end := x.skip + n
	keep := (end + indexChunk - 1) >> indexChunkBits
	clear(x.chunks[keep:])
	x.chunks = x.chunks[:keep]
	if keep > 0 {
		x.chunks[keep-1] = x.chunks[keep-1][:end-(keep-1)<<indexChunkBits]
	}
}

// dropFront forgets the first k locs.
func (x *locIndex) dropFront(k int) {
	x.skip += k
	x.n -= k
	if drop := x.skip >> indexChunkBits; drop > 0 {
		clear(x.chunks[:drop])
		x.chunks = x.chunks[drop:]
		x.skip -= drop << indexChunkBits
	}
}

func (x *locIndex) reset() { *x = locIndex{} }
