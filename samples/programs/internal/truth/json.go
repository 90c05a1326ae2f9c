package truth

import "strconv"

// Hand-written JSON (encoding/json would add ~300 KB compressed to every binary).

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			Fail("non-printable byte in JSON string")
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

type jw struct {
	b     []byte
	depth int
	first bool
}

func (w *jw) nl() {
	w.b = append(w.b, '\n')
	for i := 0; i < w.depth; i++ {
		w.b = append(w.b, "  "...)
	}
}

func (w *jw) sep() {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.nl()
}

func (w *jw) open(name string, c byte) {
	w.sep()
	if name != "" {
		w.b = appendQuoted(w.b, name)
		w.b = append(w.b, ": "...)
	}
	w.b = append(w.b, c)
	w.depth++
	w.first = true
}

func (w *jw) close(c byte) {
	w.depth--
	if !w.first {
		w.nl()
	}
	w.b = append(w.b, c)
	w.first = false
}

func (w *jw) key(name string) {
	w.sep()
	w.b = appendQuoted(w.b, name)
	w.b = append(w.b, ": "...)
}

func (w *jw) str(name, v string)          { w.key(name); w.b = appendQuoted(w.b, v) }
func (w *jw) u64(name string, v uint64)   { w.key(name); w.b = strconv.AppendUint(w.b, v, 10) }
func (w *jw) int(name string, v int)      { w.key(name); w.b = strconv.AppendInt(w.b, int64(v), 10) }
func (w *jw) boolean(name string, v bool) { w.key(name); w.b = strconv.AppendBool(w.b, v) }

func (t *Truth) appendJSON(b []byte) []byte {
	w := &jw{b: b, first: true}
	w.b = append(w.b, '{')
	w.depth = 1
	w.str("program", t.Program)
	w.str("go_version", t.GoVersion)
	w.str("goos", t.GOOS)
	w.str("goarch", t.GOARCH)
	w.str("map_impl", t.MapImpl)
	w.int("goroutines", t.Goroutines)
	w.open("maps", '[')
	for _, m := range t.Maps {
		w.open("", '{')
		w.str("name", m.Name)
		w.str("key_type", m.KeyType)
		w.str("value_type", m.ValueType)
		w.int("entries", m.Entries)
		w.u64("entries_bytes", m.EntriesBytes)
		w.u64("key_bytes", m.KeyBytes)
		w.u64("value_bytes", m.ValueBytes)
		w.u64("objects", m.Objects)
		w.u64("table_bytes", m.TableBytes)
		w.u64("total_bytes", m.EntriesBytes+m.TableBytes)
		w.open("prefixes", '[')
		for i := range m.Prefixes {
			p := &m.Prefixes[i]
			w.open("", '{')
			w.str("prefix", p.Prefix())
			w.int("entries", p.Entries)
			w.u64("bytes", p.Bytes)
			w.u64("key_bytes", p.KeyBytes)
			w.u64("value_bytes", p.ValueBytes)
			w.u64("objects", p.Objects)
			if m.HasStore {
				w.u64("store_bytes", p.StoreBytes)
			}
			w.close('}')
		}
		w.close(']')
		if m.HasMidGrowth {
			w.boolean("mid_growth", m.MidGrowth)
		}
		w.str("addr", m.Addr)
		w.str("impl", m.Impl)
		w.str("holder", m.Holder)
		if c := m.Classic; c != nil {
			w.open("classic", '{')
			w.int("B", int(c.B))
			w.int("noverflow", int(c.NOverflow))
			w.str("buckets", c.Buckets)
			w.str("oldbuckets", c.OldBuckets)
			w.u64("nevacuate", c.NEvacuate)
			w.close('}')
		}
		m.appendExtraJSON(w) // extra.go: fields of the services program, only when set
		w.close('}')
	}
	w.close(']')
	t.appendExtraJSON(w) // extra.go: pools, shared (only when non-empty)
	if len(t.Notes) > 0 {
		w.open("notes", '[')
		for _, n := range t.Notes {
			w.sep()
			w.b = appendQuoted(w.b, n)
		}
		w.close(']')
	}
	w.str("memstats", t.Memstats)
	w.close('}')
	return append(w.b, '\n')
}
