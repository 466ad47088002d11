package raftpb

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// wireMessage is what every generated type offers; the vectors exercise it.
type wireMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
	Size() int
}

type wireVector struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
	Hex   string          `json:"hex"`
}

func newWireMessage(t *testing.T, typ string) wireMessage {
	t.Helper()
	switch typ {
	case "Entry":
		return &Entry{}
	case "HardState":
		return &HardState{}
	case "ConfState":
		return &ConfState{}
	case "Snapshot":
		return &Snapshot{}
	case "SnapshotMetadata":
		return &SnapshotMetadata{}
	case "ConfChange":
		return &ConfChange{}
	case "ConfChangeSingle":
		return &ConfChangeSingle{}
	case "ConfChangeV2":
		return &ConfChangeV2{}
	case "Message":
		return &Message{}
	}
	t.Fatalf("vector names unknown type %q", typ)
	return nil
}

func loadWireVectors(t *testing.T) []wireVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/wire-vectors.json")
	require.NoError(t, err)
	var vs []wireVector
	require.NoError(t, json.Unmarshal(raw, &vs))
	return vs
}

// TestWireVectors checks both directions of the compatibility contract: each
// vector's bytes decode to exactly its value, and the value encodes to
// exactly its bytes (and Size agrees with the encoding).
func TestWireVectors(t *testing.T) {
	vs := loadWireVectors(t)
	require.Len(t, vs, 26, "the contract ships 26 vectors")
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			want, err := hex.DecodeString(v.Hex)
			require.NoError(t, err)

			expected := newWireMessage(t, v.Type)
			fillFromVector(t, expected, v.Value)

			encoded, err := expected.Marshal()
			require.NoError(t, err)
			require.Equal(t, v.Hex, hex.EncodeToString(encoded), "marshal of the vector's value")
			require.Equal(t, len(want), expected.Size(), "Size must match the encoded length")

			decoded := newWireMessage(t, v.Type)
			require.NoError(t, decoded.Unmarshal(want))
			require.Equal(t, expected, decoded, "unmarshal of the vector's bytes")
		})
	}
}

// fillFromVector sets the fields of msg (a pointer to a generated struct)
// from a vector value keyed by Go field names.
func fillFromVector(t *testing.T, msg any, raw json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // uint64 values above 2^53 must not pass through float64
	var v any
	require.NoError(t, dec.Decode(&v))
	require.NoError(t, assignValue(reflect.ValueOf(msg).Elem(), v))
}

func assignValue(dst reflect.Value, src any) error {
	switch dst.Kind() {
	case reflect.Struct:
		fields, ok := src.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", dst.Type(), src)
		}
		for name, fv := range fields {
			f := dst.FieldByName(name)
			if !f.IsValid() {
				return fmt.Errorf("%s has no field %s", dst.Type(), name)
			}
			if err := assignValue(f, fv); err != nil {
				return fmt.Errorf("%s.%s: %w", dst.Type(), name, err)
			}
		}
		return nil
	case reflect.Pointer:
		dst.Set(reflect.New(dst.Type().Elem()))
		return assignValue(dst.Elem(), src)
	case reflect.Slice:
		if dst.Type().Elem().Kind() == reflect.Uint8 {
			s, ok := src.(string)
			if !ok {
				return fmt.Errorf("bytes: want base64 string, got %T", src)
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return err
			}
			dst.SetBytes(b)
			return nil
		}
		items, ok := src.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", dst.Type(), src)
		}
		out := reflect.MakeSlice(dst.Type(), len(items), len(items))
		for i, item := range items {
			if err := assignValue(out.Index(i), item); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		dst.Set(out)
		return nil
	case reflect.Uint64, reflect.Uint32:
		n, ok := src.(json.Number)
		if !ok {
			return fmt.Errorf("want a number, got %T", src)
		}
		u, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil {
			return err
		}
		dst.SetUint(u)
		return nil
	case reflect.Int32:
		n, ok := src.(json.Number)
		if !ok {
			return fmt.Errorf("want a number, got %T", src)
		}
		i, err := strconv.ParseInt(n.String(), 10, 32)
		if err != nil {
			return err
		}
		dst.SetInt(i)
		return nil
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			return fmt.Errorf("want a bool, got %T", src)
		}
		dst.SetBool(b)
		return nil
	}
	return fmt.Errorf("unsupported kind %s", dst.Kind())
}
