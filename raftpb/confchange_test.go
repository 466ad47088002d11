package raftpb

import (
	"io"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfChangeAsV2(t *testing.T) {
	tests := []struct {
		name string
		cc   ConfChange
		want ConfChangeV2
	}{
		{
			name: "add voter keeps context",
			cc:   ConfChange{ID: 11, Type: ConfChangeAddNode, NodeID: 4, Context: []byte("peer-url")},
			want: ConfChangeV2{
				Transition: ConfChangeTransitionAuto,
				Changes:    []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 4}},
				Context:    []byte("peer-url"),
			},
		},
		{
			name: "remove without context",
			cc:   ConfChange{Type: ConfChangeRemoveNode, NodeID: 2},
			want: ConfChangeV2{Changes: []ConfChangeSingle{{Type: ConfChangeRemoveNode, NodeID: 2}}},
		},
		{
			name: "add learner",
			cc:   ConfChange{Type: ConfChangeAddLearnerNode, NodeID: 9, Context: []byte{}},
			want: ConfChangeV2{
				Changes: []ConfChangeSingle{{Type: ConfChangeAddLearnerNode, NodeID: 9}},
				Context: []byte{},
			},
		},
		{
			name: "zero value still yields one change",
			cc:   ConfChange{},
			want: ConfChangeV2{Changes: []ConfChangeSingle{{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cc.AsV2()
			require.Equal(t, tt.want, got)
			require.Len(t, got.Changes, 1)
			require.Equal(t, ConfChangeTransitionAuto, got.Transition)

			// A v1 change applies as a simple (non-joint) change.
			_, joint := got.EnterJoint()
			require.False(t, joint)
		})
	}
}

func TestConfChangeAsV1(t *testing.T) {
	tests := []struct {
		name   string
		cc     ConfChangeI
		want   ConfChange
		wantOK bool
	}{
		{
			name:   "v1 returns itself",
			cc:     ConfChange{ID: 3, Type: ConfChangeUpdateNode, NodeID: 7, Context: []byte("x")},
			want:   ConfChange{ID: 3, Type: ConfChangeUpdateNode, NodeID: 7, Context: []byte("x")},
			wantOK: true,
		},
		{
			name:   "pointer to v1 returns the value",
			cc:     &ConfChange{Type: ConfChangeRemoveNode, NodeID: 1},
			want:   ConfChange{Type: ConfChangeRemoveNode, NodeID: 1},
			wantOK: true,
		},
		{
			name: "empty v2",
			cc:   ConfChangeV2{},
		},
		{
			name: "v2 with a single change",
			cc:   ConfChangeV2{Changes: []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 1}}},
		},
		{
			name: "v2 with several changes and context",
			cc: ConfChangeV2{
				Transition: ConfChangeTransitionJointExplicit,
				Changes:    []ConfChangeSingle{{NodeID: 1}, {NodeID: 2}},
				Context:    []byte("ctx"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.cc.AsV1()
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestConfChangeV2AsV2(t *testing.T) {
	cc := ConfChangeV2{
		Transition: ConfChangeTransitionJointImplicit,
		Changes:    []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 5}},
		Context:    []byte("c"),
	}
	require.Equal(t, cc, cc.AsV2())
}

// changesOf returns n distinct voter additions.
func changesOf(n int) []ConfChangeSingle {
	var ccs []ConfChangeSingle
	for i := range n {
		ccs = append(ccs, ConfChangeSingle{Type: ConfChangeAddNode, NodeID: uint64(i + 1)})
	}
	return ccs
}

func TestConfChangeV2EnterJoint(t *testing.T) {
	const unknownTransition = ConfChangeTransition(7)
	tests := []struct {
		name          string
		transition    ConfChangeTransition
		changes       int
		wantJoint     bool
		wantAutoLeave bool
	}{
		{name: "auto, no changes", transition: ConfChangeTransitionAuto, changes: 0},
		{name: "auto, one change", transition: ConfChangeTransitionAuto, changes: 1},
		{name: "auto, two changes", transition: ConfChangeTransitionAuto, changes: 2, wantJoint: true, wantAutoLeave: true},
		{name: "implicit, no changes", transition: ConfChangeTransitionJointImplicit, changes: 0, wantJoint: true, wantAutoLeave: true},
		{name: "implicit, one change", transition: ConfChangeTransitionJointImplicit, changes: 1, wantJoint: true, wantAutoLeave: true},
		{name: "implicit, two changes", transition: ConfChangeTransitionJointImplicit, changes: 2, wantJoint: true, wantAutoLeave: true},
		{name: "explicit, no changes", transition: ConfChangeTransitionJointExplicit, changes: 0, wantJoint: true},
		{name: "explicit, one change", transition: ConfChangeTransitionJointExplicit, changes: 1, wantJoint: true},
		{name: "explicit, two changes", transition: ConfChangeTransitionJointExplicit, changes: 2, wantJoint: true},
		{name: "unknown transition, one change", transition: unknownTransition, changes: 1, wantJoint: true},
		{name: "unknown transition, two changes", transition: unknownTransition, changes: 2, wantJoint: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := ConfChangeV2{Transition: tt.transition, Changes: changesOf(tt.changes)}
			autoLeave, joint := cc.EnterJoint()
			require.Equal(t, tt.wantJoint, joint, "enters joint")
			require.Equal(t, tt.wantAutoLeave, autoLeave, "auto leave")
		})
	}
}

func TestConfChangeV2LeaveJoint(t *testing.T) {
	tests := []struct {
		name string
		cc   ConfChangeV2
		want bool
	}{
		{name: "zero value", cc: ConfChangeV2{}, want: true},
		{name: "empty non-nil changes", cc: ConfChangeV2{Changes: []ConfChangeSingle{}}, want: true},
		{name: "context is ignored", cc: ConfChangeV2{Context: []byte("why")}, want: true},
		{name: "one change", cc: ConfChangeV2{Changes: changesOf(1)}},
		{name: "two changes", cc: ConfChangeV2{Changes: changesOf(2)}},
		{name: "implicit transition", cc: ConfChangeV2{Transition: ConfChangeTransitionJointImplicit}},
		{name: "explicit transition", cc: ConfChangeV2{Transition: ConfChangeTransitionJointExplicit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.cc.LeaveJoint())
		})
	}
}

func TestMarshalConfChangeRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		cc       ConfChangeI
		wantType EntryType
		want     ConfChangeI // what UnmarshalConfChange returns
	}{
		{
			name:     "v1 with context",
			cc:       ConfChange{ID: 12, Type: ConfChangeAddNode, NodeID: 3, Context: []byte("addr")},
			wantType: EntryConfChange,
			want:     ConfChange{ID: 12, Type: ConfChangeAddNode, NodeID: 3, Context: []byte("addr")},
		},
		{
			name:     "v1 zero value",
			cc:       ConfChange{},
			wantType: EntryConfChange,
			want:     ConfChange{},
		},
		{
			name:     "pointer to v1",
			cc:       &ConfChange{Type: ConfChangeRemoveNode, NodeID: 1 << 40},
			wantType: EntryConfChange,
			want:     ConfChange{Type: ConfChangeRemoveNode, NodeID: 1 << 40},
		},
		{
			name: "v2 joint with context",
			cc: ConfChangeV2{
				Transition: ConfChangeTransitionJointExplicit,
				Changes: []ConfChangeSingle{
					{Type: ConfChangeAddNode, NodeID: 4},
					{Type: ConfChangeRemoveNode, NodeID: 1},
					{Type: ConfChangeAddLearnerNode, NodeID: 5},
				},
				Context: []byte("resize"),
			},
			wantType: EntryConfChangeV2,
			want: ConfChangeV2{
				Transition: ConfChangeTransitionJointExplicit,
				Changes: []ConfChangeSingle{
					{Type: ConfChangeAddNode, NodeID: 4},
					{Type: ConfChangeRemoveNode, NodeID: 1},
					{Type: ConfChangeAddLearnerNode, NodeID: 5},
				},
				Context: []byte("resize"),
			},
		},
		{
			name:     "v2 leave joint",
			cc:       ConfChangeV2{},
			wantType: EntryConfChangeV2,
			want:     ConfChangeV2{},
		},
		{
			name:     "v2 with a single change stays v2",
			cc:       ConfChangeV2{Changes: []ConfChangeSingle{{Type: ConfChangeUpdateNode, NodeID: 2}}},
			wantType: EntryConfChangeV2,
			want:     ConfChangeV2{Changes: []ConfChangeSingle{{Type: ConfChangeUpdateNode, NodeID: 2}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, data, err := MarshalConfChange(tt.cc)
			require.NoError(t, err)
			require.Equal(t, tt.wantType, typ)

			got, err := UnmarshalConfChange(Entry{Term: 2, Index: 10, Type: typ, Data: data})
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.cc.AsV2(), got.AsV2(), "the v2 view survives the round trip")
		})
	}
}

func TestUnmarshalConfChangeErrors(t *testing.T) {
	v1Data, err := (&ConfChange{Type: ConfChangeAddNode, NodeID: 2}).Marshal()
	require.NoError(t, err)
	v2Data, err := (&ConfChangeV2{Changes: changesOf(2)}).Marshal()
	require.NoError(t, err)

	tests := []struct {
		name         string
		entry        Entry
		wantContains string
		wantIs       error // nil: only the message is checked
	}{
		{
			name:         "normal entry",
			entry:        Entry{Index: 7, Type: EntryNormal, Data: []byte("put x=1")},
			wantContains: "raft: entry 7 of type EntryNormal carries no conf change",
		},
		{
			name:         "normal entry holding conf change bytes",
			entry:        Entry{Index: 8, Type: EntryNormal, Data: v1Data},
			wantContains: "carries no conf change",
		},
		{
			name:         "unknown entry type",
			entry:        Entry{Index: 9, Type: EntryType(5), Data: v1Data},
			wantContains: "raft: entry 9 of type 5 carries no conf change",
		},
		{
			name:         "v1 truncated varint",
			entry:        Entry{Index: 10, Type: EntryConfChange, Data: []byte{0x08, 0x80}},
			wantContains: "raft: decoding conf change at index 10",
			wantIs:       io.ErrUnexpectedEOF,
		},
		{
			name:         "v1 context past the end",
			entry:        Entry{Index: 11, Type: EntryConfChange, Data: []byte{0x22, 0x09, 'x'}},
			wantContains: "index 11",
			wantIs:       io.ErrUnexpectedEOF,
		},
		{
			name:         "v2 bytes under the v1 type",
			entry:        Entry{Index: 12, Type: EntryConfChange, Data: v2Data},
			wantContains: "raft: decoding conf change at index 12: proto: wrong wireType",
		},
		{
			name:         "v2 change truncated",
			entry:        Entry{Index: 13, Type: EntryConfChangeV2, Data: []byte{0x12, 0x02, 0x08, 0xff}},
			wantContains: "raft: decoding conf change v2 at index 13",
			wantIs:       io.ErrUnexpectedEOF,
		},
		{
			name:         "v2 negative length",
			entry:        Entry{Index: 14, Type: EntryConfChangeV2, Data: []byte{0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
			wantContains: "index 14",
			wantIs:       ErrInvalidLengthRaft,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc, err := UnmarshalConfChange(tt.entry)
			require.Error(t, err)
			require.Nil(t, cc)
			require.ErrorContains(t, err, tt.wantContains)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
		})
	}
}

func TestConfStateEquivalent(t *testing.T) {
	joint := ConfState{
		Voters:         []uint64{1, 2, 3},
		Learners:       []uint64{5},
		VotersOutgoing: []uint64{1, 2, 4},
		LearnersNext:   []uint64{4},
		AutoLeave:      true,
	}
	// with returns a copy of joint changed by edit.
	with := func(edit func(cs *ConfState)) ConfState {
		cs := ConfState{
			Voters:         append([]uint64(nil), joint.Voters...),
			Learners:       append([]uint64(nil), joint.Learners...),
			VotersOutgoing: append([]uint64(nil), joint.VotersOutgoing...),
			LearnersNext:   append([]uint64(nil), joint.LearnersNext...),
			AutoLeave:      joint.AutoLeave,
		}
		edit(&cs)
		return cs
	}

	tests := []struct {
		name      string
		a, b      ConfState
		wantEqual bool
	}{
		{name: "zero values", wantEqual: true},
		{name: "identical", a: joint, b: with(func(*ConfState) {}), wantEqual: true},
		{
			name: "every list reordered",
			a:    joint,
			b: ConfState{
				Voters:         []uint64{3, 1, 2},
				Learners:       []uint64{5},
				VotersOutgoing: []uint64{4, 2, 1},
				LearnersNext:   []uint64{4},
				AutoLeave:      true,
			},
			wantEqual: true,
		},
		{name: "nil and empty lists", a: ConfState{Voters: nil}, b: ConfState{Voters: []uint64{}}, wantEqual: true},
		{
			name:      "duplicates count once",
			a:         ConfState{Voters: []uint64{1, 1, 2}, Learners: []uint64{3, 3}},
			b:         ConfState{Voters: []uint64{2, 1}, Learners: []uint64{3}},
			wantEqual: true,
		},
		{
			name: "duplicate does not stand in for a missing id",
			a:    ConfState{Voters: []uint64{1, 1}},
			b:    ConfState{Voters: []uint64{1, 2}},
		},
		{name: "voters differ", a: joint, b: with(func(cs *ConfState) { cs.Voters = []uint64{1, 2, 6} })},
		{name: "voter missing", a: joint, b: with(func(cs *ConfState) { cs.Voters = cs.Voters[:2] })},
		{name: "learners differ", a: joint, b: with(func(cs *ConfState) { cs.Learners = []uint64{6} })},
		{name: "learners empty", a: joint, b: with(func(cs *ConfState) { cs.Learners = nil })},
		{name: "outgoing voters differ", a: joint, b: with(func(cs *ConfState) { cs.VotersOutgoing = []uint64{1, 2, 3} })},
		{name: "outgoing voters empty", a: joint, b: with(func(cs *ConfState) { cs.VotersOutgoing = nil })},
		{name: "next learners differ", a: joint, b: with(func(cs *ConfState) { cs.LearnersNext = []uint64{3} })},
		{name: "auto leave differs", a: joint, b: with(func(cs *ConfState) { cs.AutoLeave = false })},
		{
			name: "same id in a different list",
			a:    ConfState{Voters: []uint64{1}},
			b:    ConfState{Learners: []uint64{1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, pair := range [][2]ConfState{{tt.a, tt.b}, {tt.b, tt.a}} {
				err := pair[0].Equivalent(pair[1])
				if tt.wantEqual {
					require.NoError(t, err)
					continue
				}
				require.EqualError(t, err,
					"raft: conf states differ: "+pair[0].Describe()+" != "+pair[1].Describe())
			}
		})
	}
}

func TestConfStateDescribe(t *testing.T) {
	tests := []struct {
		name string
		cs   ConfState
		want string
	}{
		{name: "zero value", cs: ConfState{}, want: "voters=()"},
		{name: "voters only", cs: ConfState{Voters: []uint64{1, 2, 3}}, want: "voters=(1 2 3)"},
		{
			name: "voters and learners",
			cs:   ConfState{Voters: []uint64{1}, Learners: []uint64{2, 3}},
			want: "voters=(1) learners=(2 3)",
		},
		{
			name: "joint state",
			cs: ConfState{
				Voters:         []uint64{1, 2, 3},
				Learners:       []uint64{5},
				VotersOutgoing: []uint64{1, 2, 4},
				LearnersNext:   []uint64{4},
				AutoLeave:      true,
			},
			want: "voters=(1 2 3)&&(1 2 4) learners=(5) learners_next=(4) autoleave",
		},
		{
			name: "joint state left explicitly",
			cs:   ConfState{Voters: []uint64{2}, VotersOutgoing: []uint64{1}},
			want: "voters=(2)&&(1)",
		},
		{
			name: "empty incoming side of a joint state",
			cs:   ConfState{VotersOutgoing: []uint64{7}},
			want: "voters=()&&(7)",
		},
		{
			name: "order is kept, not sorted",
			cs:   ConfState{Voters: []uint64{3, 1, 2}},
			want: "voters=(3 1 2)",
		},
		{
			name: "largest id",
			cs:   ConfState{Voters: []uint64{18446744073709551615}},
			want: "voters=(18446744073709551615)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.cs.Describe())
		})
	}
}

func TestConfChangesFromString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ConfChangeSingle
	}{
		{name: "empty", in: "", want: nil},
		{name: "only spaces", in: " \t\n ", want: nil},
		{name: "one voter", in: "v1", want: []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 1}}},
		{
			name: "every kind",
			in:   "v1 l2 r3 u4",
			want: []ConfChangeSingle{
				{Type: ConfChangeAddNode, NodeID: 1},
				{Type: ConfChangeAddLearnerNode, NodeID: 2},
				{Type: ConfChangeRemoveNode, NodeID: 3},
				{Type: ConfChangeUpdateNode, NodeID: 4},
			},
		},
		{
			// strings.Fields never yields an empty token, so runs of
			// whitespace are accepted as one separator.
			name: "repeated and mixed whitespace",
			in:   "  v1\t\tr2 \n",
			want: []ConfChangeSingle{
				{Type: ConfChangeAddNode, NodeID: 1},
				{Type: ConfChangeRemoveNode, NodeID: 2},
			},
		},
		{name: "node zero", in: "r0", want: []ConfChangeSingle{{Type: ConfChangeRemoveNode, NodeID: 0}}},
		{name: "leading zeros", in: "l007", want: []ConfChangeSingle{{Type: ConfChangeAddLearnerNode, NodeID: 7}}},
		{
			name: "largest id",
			in:   "u18446744073709551615",
			want: []ConfChangeSingle{{Type: ConfChangeUpdateNode, NodeID: 18446744073709551615}},
		},
		{
			name: "repeated change kept",
			in:   "v1 v1",
			want: []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 1}, {Type: ConfChangeAddNode, NodeID: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfChangesFromString(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestConfChangesFromStringErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		wantIs  error // nil: only the message is checked
	}{
		{name: "letter without id", in: "v", wantErr: `raft: conf change "v": want a letter and a node ID`},
		{name: "digit alone", in: "7", wantErr: `raft: conf change "7": want a letter and a node ID`},
		{name: "too short after a valid token", in: "v1 r", wantErr: `raft: conf change "r": want a letter and a node ID`},
		{name: "unknown letter", in: "x1", wantErr: `raft: conf change "x1": unknown kind 'x'`},
		{name: "upper case letter", in: "V1", wantErr: `raft: conf change "V1": unknown kind 'V'`},
		{name: "id without letter", in: "12", wantErr: `raft: conf change "12": unknown kind '1'`},
		{name: "unknown letter after valid tokens", in: "v1 l2 q3", wantErr: `raft: conf change "q3": unknown kind 'q'`},
		{name: "bad number", in: "vx", wantErr: `raft: conf change "vx": invalid syntax`, wantIs: strconv.ErrSyntax},
		{name: "negative number", in: "r-1", wantErr: `raft: conf change "r-1": invalid syntax`, wantIs: strconv.ErrSyntax},
		{name: "plus sign", in: "r+1", wantErr: `raft: conf change "r+1": invalid syntax`, wantIs: strconv.ErrSyntax},
		{name: "two letters", in: "vl1", wantErr: `raft: conf change "vl1": invalid syntax`, wantIs: strconv.ErrSyntax},
		{name: "comma separated", in: "v1,v2", wantErr: `raft: conf change "v1,v2": invalid syntax`, wantIs: strconv.ErrSyntax},
		{
			name:    "id overflows uint64",
			in:      "v18446744073709551616",
			wantErr: `raft: conf change "v18446744073709551616": value out of range`,
			wantIs:  strconv.ErrRange,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfChangesFromString(tt.in)
			require.EqualError(t, err, tt.wantErr)
			require.Nil(t, got)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
		})
	}
}

func TestConfChangesToString(t *testing.T) {
	tests := []struct {
		name string
		ccs  []ConfChangeSingle
		want string
	}{
		{name: "nil", ccs: nil, want: ""},
		{name: "one", ccs: []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 1}}, want: "v1"},
		{
			name: "every kind",
			ccs: []ConfChangeSingle{
				{Type: ConfChangeAddNode, NodeID: 1},
				{Type: ConfChangeAddLearnerNode, NodeID: 2},
				{Type: ConfChangeRemoveNode, NodeID: 3},
				{Type: ConfChangeUpdateNode, NodeID: 4},
			},
			want: "v1 l2 r3 u4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ConfChangesToString(tt.ccs)
			require.Equal(t, tt.want, got)

			back, err := ConfChangesFromString(got)
			require.NoError(t, err)
			require.Equal(t, tt.ccs, back)
		})
	}

	t.Run("unknown type is not parsed back", func(t *testing.T) {
		s := ConfChangesToString([]ConfChangeSingle{{Type: ConfChangeType(9), NodeID: 5}})
		require.Equal(t, "unknown5", s)
		_, err := ConfChangesFromString(s)
		require.Error(t, err, "an unknown type must not read back as some other change")
	})
}
