package raftpb

// Entry and Message encode and decode with the hand-written methods in
// codec_encode.go and codec_decode.go instead of generated ones (raft.proto
// turns gogo's off for them). The bytes are exactly what the generated
// code would produce and accept: fields in field-number order, every
// scalar written even when zero, Data and Context written when non-nil,
// and on decoding the same merge rules (scalars overwritten, repeated
// fields appended, unknown fields skipped) and the same inputs rejected.
// The tests hold them to a generated reference codec (internal/raftpbref)
// on random and malformed input.
//
// What differs is the cost. Message.Unmarshal walks the input once for
// everything but the entries, noting where each entry lies (in an array on
// its stack: one of fewEntries, then, for a message with more, one of
// stackEntries; a message with more still walks its entries a second
// time), then grows Entries once, decodes the entries
// (those in the encoders' canonical field order on a path of their own)
// and copies every payload into a single buffer of exactly their total
// size: two allocations for the entries of a message instead of one per
// entry plus the slice's regrowth. Each entry's Data is a full slice
// expression over that buffer (its capacity ends where its payload does),
// so appending to one entry's Data never overwrites the next. Nothing
// aliases the input: the caller may reuse it at once. Keys of one byte,
// the only ones encoders write for Message's fields, are matched whole,
// and varints and lengths of one or two bytes are decoded without a loop;
// anything else takes the general path, which follows the generated code.
// Message.Marshal sizes each entry once, keeping the sizes for the length
// prefixes (in an array of fewEntries, or of stackEntries for a message
// with more); sizing and encoding write each entry out in the loop rather
// than calling Entry's methods.

// Wire tags (field number << 3 | wire type) of Entry and Message.
const (
	tagEntryType  = 0x08 // field 1, varint
	tagEntryTerm  = 0x10 // field 2, varint
	tagEntryIndex = 0x18 // field 3, varint
	tagEntryData  = 0x22 // field 4, length-delimited

	tagMsgType       = 0x08 // field 1, varint
	tagMsgTo         = 0x10 // field 2, varint
	tagMsgFrom       = 0x18 // field 3, varint
	tagMsgTerm       = 0x20 // field 4, varint
	tagMsgLogTerm    = 0x28 // field 5, varint
	tagMsgIndex      = 0x30 // field 6, varint
	tagMsgEntries    = 0x3a // field 7, length-delimited
	tagMsgCommit     = 0x40 // field 8, varint
	tagMsgSnapshot   = 0x4a // field 9, length-delimited
	tagMsgReject     = 0x50 // field 10, varint
	tagMsgRejectHint = 0x58 // field 11, varint
	tagMsgContext    = 0x62 // field 12, length-delimited
	tagMsgVote       = 0x68 // field 13, varint
	tagMsgResponses  = 0x72 // field 14, length-delimited
)
