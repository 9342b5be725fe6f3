package main

import (
	"reflect"
	"testing"
	"time"
)

// TestColumnOf: every field read at its offset equals the field read by
// reflection, for every field type the rows use and for one they do not
// (the reflect fallback), and an empty batch gives empty columns.
func TestColumnOf(t *testing.T) {
	type row struct {
		A string
		B []string
		C time.Time
		D uint16
		E uint32
		F uint64
		G int32
		H float64
		I bool // not read by offset
		_ [3]byte
		J string
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	rows := []row{
		{A: "a", B: []string{"x", "y"}, C: at, D: 1, E: 2, F: 3, G: -4, H: 5.5, I: true, J: "j"},
		{A: "", B: nil, C: time.Time{}, D: 65535, E: 1 << 31, F: 1 << 63, G: 1 << 30, H: -0.25, I: false, J: "second"},
		{A: "third", B: []string{}, C: at.Add(time.Hour), J: ""},
	}
	rt := reflect.TypeFor[row]()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if f.Name == "_" {
			continue
		}
		for _, rs := range [][]row{rows, rows[1:], nil} {
			got := columnOf(rs, i, f.Type, f.Offset)
			want := reflect.MakeSlice(reflect.SliceOf(f.Type), len(rs), len(rs))
			for j := range rs {
				want.Index(j).Set(reflect.ValueOf(rs[j]).Field(i))
			}
			if !reflect.DeepEqual(got, want.Interface()) {
				t.Errorf("field %s of %d rows: got %#v, want %#v", f.Name, len(rs), got, want.Interface())
			}
		}
	}
}
