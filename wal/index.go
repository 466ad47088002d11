package wal

// locIndex is the in-memory index of the live log, one loc per entry, in
// fixed-size chunks: growing it never copies what it holds (a large log's
// index is not copied under the lock readers wait on), and dropping a
// compacted prefix frees whole chunks.
type locIndex struct {
	// chunks hold the locs from chunks[0][skip] on; every chunk has
	// indexChunk elements.
	chunks [][]loc
	skip   int
	n      int
}

const (
	indexChunkBits = 10
	indexChunk     = 1 << indexChunkBits
)

func (x *locIndex) len() int { return x.n }

// at returns the i-th loc (0-based).
func (x *locIndex) at(i int) loc {
	j := x.skip + i
	return x.chunks[j>>indexChunkBits][j&(indexChunk-1)]
}

func (x *locIndex) append(l loc) {
	j := x.skip + x.n
	if c := j >> indexChunkBits; c == len(x.chunks) {
		x.chunks = append(x.chunks, make([]loc, indexChunk))
	}
	x.chunks[j>>indexChunkBits][j&(indexChunk-1)] = l
	x.n++
}

// truncate keeps the first n locs.
func (x *locIndex) truncate(n int) {
	x.n = n
	keep := (x.skip + n + indexChunk - 1) >> indexChunkBits
	clear(x.chunks[keep:])
	x.chunks = x.chunks[:keep]
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
