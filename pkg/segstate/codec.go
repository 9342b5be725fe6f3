package segstate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/firstparty/firstparty/pkg/segments"
)

// An entry is stored as protobuf wire bytes of segment.v1.SegmentEntry
// (proto/segment/v1/segment.proto), written and read here straight from
// and into Entry with protowire: entries are decoded and encoded for every
// segment an event can move, and JSON (the format before) cost about a
// third of the segmenter's CPU. Entries written as JSON are still read:
// JSON starts with '{', which no SegmentEntry does (its first byte is a
// field tag of 0x08–0x32 or nothing at all).

// Field numbers of SegmentEntry and AggregateState.
const (
	fEntryVersion    = 1
	fEntryIn         = 2
	fEntrySince      = 3
	fEntryHasState   = 4
	fEntryWatermark  = 5
	fEntryAggregates = 6

	fAggName    = 1
	fAggHash    = 2
	fAggStarts  = 3
	fAggValues  = 4
	fAggTotal   = 5
	fAggFirst   = 6
	fAggLast    = 7
	fAggMissing = 8
)

// encodeEntry appends e's wire form to b; aggregates in name order, so
// equal entries encode equally.
func encodeEntry(b []byte, e *Entry) []byte {
	if e == nil { // as JSON's null read back: the zero entry
		return b
	}
	b = appendVarint(b, fEntryVersion, uint64(e.Version))
	if e.In {
		b = appendVarint(b, fEntryIn, 1)
	}
	b = appendVarint(b, fEntrySince, uint64(e.Since))
	st := e.State
	if st == nil {
		return b
	}
	b = appendVarint(b, fEntryHasState, 1)
	b = appendVarint(b, fEntryWatermark, uint64(st.Watermark))
	names := make([]string, 0, len(st.Aggs))
	for n := range st.Aggs {
		names = append(names, n)
	}
	sort.Strings(names)
	var agg []byte
	for _, n := range names {
		a := st.Aggs[n]
		if a == nil {
			continue
		}
		agg = encodeAgg(agg[:0], n, a)
		b = protowire.AppendTag(b, fEntryAggregates, protowire.BytesType)
		b = protowire.AppendBytes(b, agg)
	}
	return b
}

func encodeAgg(b []byte, name string, a *segments.AggState) []byte {
	b = protowire.AppendTag(b, fAggName, protowire.BytesType)
	b = protowire.AppendString(b, name)
	if a.Hash != "" {
		b = protowire.AppendTag(b, fAggHash, protowire.BytesType)
		b = protowire.AppendString(b, a.Hash)
	}
	if len(a.Buckets) > 0 {
		n := 0
		for _, k := range a.Buckets {
			n += protowire.SizeVarint(uint64(k.Start))
		}
		b = protowire.AppendTag(b, fAggStarts, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for _, k := range a.Buckets {
			b = protowire.AppendVarint(b, uint64(k.Start))
		}
		b = protowire.AppendTag(b, fAggValues, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(8*len(a.Buckets)))
		for _, k := range a.Buckets {
			b = protowire.AppendFixed64(b, math.Float64bits(k.Value))
		}
	}
	if a.Total != 0 {
		b = protowire.AppendTag(b, fAggTotal, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(a.Total))
	}
	b = appendVarint(b, fAggFirst, uint64(a.First))
	b = appendVarint(b, fAggLast, uint64(a.Last))
	return appendVarint(b, fAggMissing, uint64(a.Missing))
}

// appendVarint appends a varint field unless it is zero (proto3).
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

var errCorrupt = errors.New("corrupt segment entry")

// entryVersion reads the version of an entry's wire form from its first
// field (fields are written in number order and a zero is left out, so an
// entry that starts with another field, or is empty, is of version 0).
func entryVersion(b string) (uint32, bool) {
	if len(b) > 0 && b[0] == '{' {
		return 0, false // JSON: only a decode tells
	}
	if len(b) == 0 {
		return 0, true
	}
	num, typ, n := protowire.ConsumeTag([]byte(b[:min(len(b), 2)]))
	if n < 0 {
		return 0, false
	}
	if num != fEntryVersion {
		return 0, true
	}
	if typ != protowire.VarintType {
		return 0, false
	}
	v, m := protowire.ConsumeVarint([]byte(b[n:min(len(b), n+binary.MaxVarintLen64)]))
	if m < 0 || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// decodeEntry reads an entry in either stored form (wire bytes, or the
// JSON of earlier releases) into e.
func decodeEntry(b []byte, e *Entry) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, e)
	}
	*e = Entry{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errCorrupt
		}
		b = b[n:]
		switch {
		case num == fEntryAggregates && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
			name, a, err := decodeAgg(v)
			if err != nil {
				return err
			}
			if e.State == nil {
				e.State = &segments.State{}
			}
			if e.State.Aggs == nil {
				e.State.Aggs = map[string]*segments.AggState{}
			}
			e.State.Aggs[name] = a
		case typ == protowire.VarintType && num <= fEntryWatermark:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
			switch num {
			case fEntryVersion:
				if v > math.MaxUint32 {
					return errCorrupt
				}
				e.Version = uint32(v)
			case fEntryIn:
				e.In = v != 0
			case fEntrySince:
				e.Since = int64(v)
			case fEntryHasState:
				if v != 0 && e.State == nil {
					e.State = &segments.State{}
				}
			case fEntryWatermark:
				if e.State == nil {
					e.State = &segments.State{}
				}
				e.State.Watermark = int64(v)
			}
		default: // a field a later release added
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errCorrupt
			}
			b = b[n:]
		}
	}
	return nil
}

func decodeAgg(b []byte) (string, *segments.AggState, error) {
	a := &segments.AggState{}
	var name string
	var starts []int64
	var values []float64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", nil, errCorrupt
		}
		b = b[n:]
		switch {
		case (num == fAggName || num == fAggHash) && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return "", nil, errCorrupt
			}
			b = b[n:]
			if num == fAggName {
				name = v
			} else {
				a.Hash = v
			}
		case num == fAggStarts && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", nil, errCorrupt
			}
			b = b[n:]
			for len(v) > 0 {
				s, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return "", nil, errCorrupt
				}
				v = v[n:]
				starts = append(starts, int64(s))
			}
		case num == fAggValues && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 || len(v)%8 != 0 {
				return "", nil, errCorrupt
			}
			b = b[n:]
			for len(v) > 0 {
				f, _ := protowire.ConsumeFixed64(v)
				v = v[8:]
				values = append(values, math.Float64frombits(f))
			}
		case num == fAggTotal && typ == protowire.Fixed64Type:
			f, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return "", nil, errCorrupt
			}
			b = b[n:]
			a.Total = math.Float64frombits(f)
		case (num == fAggFirst || num == fAggLast || num == fAggMissing) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return "", nil, errCorrupt
			}
			b = b[n:]
			switch num {
			case fAggFirst:
				a.First = int64(v)
			case fAggLast:
				a.Last = int64(v)
			default:
				a.Missing = int64(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", nil, errCorrupt
			}
			b = b[n:]
		}
	}
	if len(starts) != len(values) {
		return "", nil, fmt.Errorf("%w: %d bucket starts, %d values", errCorrupt, len(starts), len(values))
	}
	if len(starts) > 0 {
		a.Buckets = make([]segments.Bucket, len(starts))
		for i := range starts {
			a.Buckets[i] = segments.Bucket{Start: starts[i], Value: values[i]}
		}
	}
	return name, a, nil
}
