package raftpb

import (
	"fmt"
	"testing"
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
func BenchmarkMessageUnmarshal(b *testing.B) {
	src := benchMsgApp()
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
