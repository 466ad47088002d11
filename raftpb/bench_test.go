package raftpb

import (
	"fmt"
	"testing"

	"github.com/raftcore/raft/raftpb/internal/raftpbref"
)

// benchPayloadSizes are the entry payloads the codec benchmarks use: a small
// command and a page-sized one.
var benchPayloadSizes = []int{128, 4096}

// benchEntry returns a normal entry with a payload of n bytes and header
// values in the range a long-running log reaches.
func benchEntry(n int, index uint64) Entry {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*31 + 7)
	}
	return Entry{Term: 42, Index: index, Type: EntryNormal, Data: data}
}

// benchMsgApp returns a MsgApp carrying 16 entries of 128 bytes.
func benchMsgApp() Message {
	ents := make([]Entry, 16)
	for i := range ents {
		ents[i] = benchEntry(128, 1_000_001+uint64(i))
	}
	return Message{
		Type:    MsgApp,
		To:      2,
		From:    1,
		Term:    42,
		LogTerm: 42,
		Index:   1_000_000,
		Entries: ents,
		Commit:  999_990,
	}
}

func payloadName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkEntryMarshal measures encoding into a reused buffer (MarshalTo),
// and, for comparison, Marshal, which allocates the result each time.
func BenchmarkEntryMarshal(b *testing.B) {
	for _, n := range benchPayloadSizes {
		e := benchEntry(n, 1_000_000)
		size := e.Size()
		b.Run("MarshalTo/"+payloadName(n), func(b *testing.B) {
			buf := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := e.MarshalTo(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Marshal/"+payloadName(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := e.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEntryUnmarshal decodes into a fresh Entry each time, so the copy
// of the payload (one allocation) is part of what is measured.
func BenchmarkEntryUnmarshal(b *testing.B) {
	for _, n := range benchPayloadSizes {
		src := benchEntry(n, 1_000_000)
		data, err := src.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(payloadName(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var e Entry
				if err := e.Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMessageMarshal encodes a MsgApp of 16 entries of 128 bytes, into a
// reused buffer and with Marshal.
func BenchmarkMessageMarshal(b *testing.B) {
	m := benchMsgApp()
	size := m.Size()
	b.Run("MarshalTo", func(b *testing.B) {
		buf := make([]byte, size)
		b.ReportAllocs()
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := m.MarshalTo(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := m.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMessageUnmarshal decodes the same MsgApp into a fresh Message each
// time, as a transport receiving it would.
func BenchmarkMessageUnmarshal(b *testing.B) { benchUnmarshal(b, benchMsgApp()) }

// benchUnmarshal decodes src's encoding into a fresh Message each time.
func benchUnmarshal(b *testing.B, src Message) {
	data, err := src.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var m Message
		if err := m.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessageUnmarshalOneEntry decodes a MsgApp carrying one entry of
// 128 bytes, a follower's usual append when proposals come one at a time,
// into a fresh Message each time: two allocations, the Entries slice and
// the payload.
func BenchmarkMessageUnmarshalOneEntry(b *testing.B) {
	src := benchMsgApp()
	src.Entries = src.Entries[:1]
	benchUnmarshal(b, src)
}

// BenchmarkMessageSize measures Size alone, which flow control calls on every
// outgoing message; bytes/s is encoded bytes sized per second.
func BenchmarkMessageSize(b *testing.B) {
	m := benchMsgApp()
	b.ReportAllocs()
	b.SetBytes(int64(m.Size()))
	for b.Loop() {
		_ = m.Size()
	}
}

// BenchmarkMsgAppRoundTrip encodes and decodes a MsgApp of 64 entries of
// 128 bytes, as a transport does once on each side, with the hand-written
// codec and with the generated one it replaced (the reference the tests
// compare against, the same code etcd raft's raftpb is generated to). Run
// both in one binary and compare them side by side. Besides ns/op it
// reports cpu-ns/op, the process's CPU time per operation (GC included),
// which a loaded machine disturbs far less than the wall clock:
//
//	go test -run '^$' -bench MsgAppRoundTrip -benchmem ./raftpb
func BenchmarkMsgAppRoundTrip(b *testing.B) {
	src := Message{Type: MsgApp, To: 2, From: 1, Term: 42, LogTerm: 42, Index: 1_000_000, Commit: 999_990,
		Entries: make([]Entry, 64)}
	for i := range src.Entries {
		src.Entries[i] = benchEntry(128, 1_000_001+uint64(i))
	}
	ref := raftpbref.Message{Type: raftpbref.MsgApp, To: 2, From: 1, Term: 42, LogTerm: 42, Index: 1_000_000,
		Commit: 999_990, Entries: make([]raftpbref.Entry, 64)}
	for i, e := range src.Entries {
		ref.Entries[i] = raftpbref.Entry{Term: e.Term, Index: e.Index, Type: raftpbref.EntryType(e.Type), Data: e.Data}
	}
	size := src.Size()
	b.Run("codec=generated", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		defer reportCPUPerOp(b)()
		for b.Loop() {
			data, err := ref.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			var m raftpbref.Message
			if err := m.Unmarshal(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("codec=handwritten", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(size))
		defer reportCPUPerOp(b)()
		for b.Loop() {
			data, err := src.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			var m Message
			if err := m.Unmarshal(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPUPerOp starts measuring the process's CPU time; the function it
// returns reports it per operation as cpu-ns/op. Call it after setup and
// defer the result: for b.Loop() keeps the timer for the loop alone, and
// this keeps to the same span.
func reportCPUPerOp(b *testing.B) func() {
	start := processCPUNanos()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPUNanos()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
