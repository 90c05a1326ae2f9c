//! `coreheap histogram`: objects per type with their shallow and retained bytes.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use super::heapview::{HeapView, Labelling, TypeKey};
use super::{human_bytes, Envelope};
use crate::analysis::Reachability;
use crate::heap::ObjId;

/// Objects per piece when they are counted by type on every core.
const PIECE: usize = 1 << 20;

/// The reachable objects of one type key in a piece of the objects.
struct KeyCount {
    key: TypeKey,
    /// The first of them.
    first: u32,
    count: u64,
    bytes: u64,
}

/// Counts the reachable objects from `base` on by type key, the keys in the order their first
/// objects come, and sets each object's slot of `line_of` to its key's place in that order
/// (`u32::MAX` for unreachable objects).
fn count_piece(v: &HeapView, base: u32, line_of: &mut [u32]) -> Vec<KeyCount> {
    let a = v.a;
    let mut keys: Vec<KeyCount> = Vec::new();
    let mut at: HashMap<TypeKey, u32, foldhash::fast::RandomState> = HashMap::default();
    // Neighbours mostly share a span, and often a type: the last span and key are tried first.
    let span = std::cell::Cell::new(0);
    let mut last: Option<(TypeKey, u32)> = None;
    for (o, slot) in (base..).zip(line_of.iter_mut()) {
        if !a.doms.is_reachable(o) {
            *slot = u32::MAX;
            continue;
        }
        let size = a.objects.size_after(ObjId(o), &span);
        let key = v.type_key_sized(ObjId(o), size);
        let i = match last {
            Some((k, i)) if k == key => i,
            _ => {
                let i = *at.entry(key).or_insert_with(|| {
                    keys.push(KeyCount {
                        key,
                        first: o,
                        count: 0,
                        bytes: 0,
                    });
                    keys.len() as u32 - 1
                });
                last = Some((key, i));
                i
            }
        };
        let k = &mut keys[i as usize];
        k.count += 1;
        k.bytes += size;
        *slot = i;
    }
    keys
}

/// Retained bytes per line: what the objects of each line keep alive together, an object
/// nested under another of its line counted once. That is every reachable object's bytes
/// counted once for each line on its dominator chain, itself included; the chains' sets of
/// lines are interned, since few distinct ones occur. The chains are climbed on every core, in
/// pieces of `piece` objects, the sets interned in one table (each piece remembers the ones it
/// asked for): a set's number depends on which piece meets it first, its lines do not.
fn retained_by_line(v: &HeapView, line_of: &[u32], lines: usize, piece: usize) -> Vec<u64> {
    let a = v.a;
    let line = |x: u32| line_of.get(x as usize).copied().unwrap_or(u32::MAX);
    let sets = std::sync::Mutex::new(LineSets::default());
    let with = |s: u32, l: u32| {
        (sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
        .with(s, l)
    };
    /// A piece's sets asked for, its bytes per set, and the span of its last object (the
    /// objects come in id order).
    #[derive(Default)]
    struct Piece {
        asked: HashMap<(u32, u32), u32, foldhash::fast::RandomState>,
        bytes: Vec<u64>,
        span: std::cell::Cell<usize>,
    }
    // Each node is labelled with the set of lines on its dominator chain, itself included.
    let pieces: Vec<Piece> = v.label_chains(
        &[],
        Labelling {
            unrooted: LineSets::EMPTY,
            below: u32::MAX,
        },
        piece,
        Piece::default,
        |p, above, x| match line(x) {
            u32::MAX => above,
            l => *p.asked.entry((above, l)).or_insert_with(|| with(above, l)),
        },
        |p, x, s| {
            if p.bytes.len() <= s as usize {
                p.bytes.resize(s as usize + 1, 0);
            }
            p.bytes[s as usize] += a.objects.size_after(ObjId(x), &p.span);
        },
    );
    let sets = sets
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut retained = vec![0u64; lines];
    for Piece { bytes, .. } in pieces {
        for (s, &b) in bytes.iter().enumerate().filter(|(_, &b)| b > 0) {
            for l in sets.lines(s as u32) {
                retained[l as usize] += b;
            }
        }
    }
    retained
}

/// Sets of lines, interned: each is a smaller set plus one line.
#[derive(Default)]
struct LineSets {
    /// Per set after the empty one: (the set it extends, the line it adds).
    added: Vec<(u32, u32)>,
    /// (set, line) → the set with that line.
    with: HashMap<(u32, u32), u32, foldhash::fast::RandomState>,
}

impl LineSets {
    /// The set with no line.
    const EMPTY: u32 = 0;

    /// Set `s` with line `l` too (`s` itself for no line, `u32::MAX`).
    fn with(&mut self, s: u32, l: u32) -> u32 {
        if l == u32::MAX {
            return s;
        }
        if let Some(&t) = self.with.get(&(s, l)) {
            return t;
        }
        let t = if self.lines(s).any(|x| x == l) {
            s
        } else {
            self.added.push((s, l));
            self.added.len() as u32
        };
        self.with.insert((s, l), t);
        t
    }

    /// The lines of set `s`.
    fn lines(&self, mut s: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::from_fn(move || {
            let &(parent, l) = self.added.get((s as usize).checked_sub(1)?)?;
            s = parent;
            Some(l)
        })
    }
}

/// One type's line.
#[derive(Debug, Serialize)]
pub struct TypeLine {
    /// Type name (or `<unknown, N B>` for untyped objects of size class N).
    pub type_name: String,
    /// Reachable objects.
    pub count: u64,
    /// Their bytes.
    pub shallow_bytes: u64,
    /// Bytes the type's objects keep alive together (nested objects of the type counted once).
    pub retained_bytes: u64,
}

/// How to sort the histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Object count.
    Count,
    /// Shallow bytes.
    Shallow,
    /// Retained bytes.
    Retained,
}

/// The `histogram` report.
#[derive(Debug, Serialize)]
pub struct HistogramReport {
    /// Go release.
    pub go_version: String,
    /// Heap totals.
    pub heap: Reachability,
    /// Lines, sorted.
    pub types: Vec<TypeLine>,
    /// Problems that did not stop the analysis.
    pub warnings: Vec<String>,
}

impl HistogramReport {
    /// Counts reachable objects per type.
    pub fn gather(v: &HeapView, go_version: &str, sort: SortBy) -> HistogramReport {
        Self::gather_in_pieces(v, go_version, sort, PIECE)
    }

    /// [`HistogramReport::gather`], counting the objects in pieces of `piece` on every core.
    pub fn gather_in_pieces(
        v: &HeapView,
        go_version: &str,
        sort: SortBy,
        piece: usize,
    ) -> HistogramReport {
        let piece = piece.max(1);
        let a = v.a;
        let n = a.graph.objects;
        // Lines by name, in the order their first objects come. A name is made once per
        // type key (types are interned), not once per object. Pieces of the objects are
        // counted apart, each by its own keys in the order they come, then the keys are given
        // lines piece after piece, which keeps that order.
        // Every slot is written by the count (zeroed, the table is fresh pages, faulted in there
        // on every core).
        let mut line_of = vec![0u32; n as usize];
        let counted: Vec<Vec<KeyCount>> = line_of
            .par_chunks_mut(piece)
            .enumerate()
            .map(|(k, chunk)| count_piece(v, (k * piece) as u32, chunk))
            .collect();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut by_key: HashMap<TypeKey, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut lines: Vec<TypeLine> = Vec::new();
        let remaps: Vec<Vec<u32>> = (counted.into_iter())
            .map(|keys| {
                (keys.into_iter())
                    .map(|c| {
                        let i = *by_key.entry(c.key).or_insert_with(|| {
                            let name = v.type_name(ObjId(c.first));
                            *index.entry(name.clone()).or_insert_with(|| {
                                lines.push(TypeLine {
                                    type_name: name,
                                    count: 0,
                                    shallow_bytes: 0,
                                    retained_bytes: 0,
                                });
                                lines.len() - 1
                            }) as u32
                        });
                        lines[i as usize].count += c.count;
                        lines[i as usize].shallow_bytes += c.bytes;
                        i
                    })
                    .collect()
            })
            .collect();
        (line_of.par_chunks_mut(piece).zip(remaps)).for_each(|(chunk, remap)| {
            for l in chunk.iter_mut().filter(|l| **l != u32::MAX) {
                *l = remap.get(*l as usize).copied().unwrap_or(u32::MAX);
            }
        });
        let retained = retained_by_line(v, &line_of, lines.len(), piece);
        for (l, bytes) in lines.iter_mut().zip(retained) {
            l.retained_bytes = bytes;
        }
        match sort {
            SortBy::Count => lines.sort_by_key(|l| std::cmp::Reverse(l.count)),
            SortBy::Shallow => lines.sort_by_key(|l| std::cmp::Reverse(l.shallow_bytes)),
            SortBy::Retained => lines.sort_by_key(|l| std::cmp::Reverse(l.retained_bytes)),
        }
        HistogramReport {
            go_version: go_version.to_string(),
            heap: a.reachability(),
            types: lines,
            warnings: a.warnings.clone(),
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/histogram/v1", self))
    }

    /// A table for people, `width` columns wide, at most `limit` lines (0: all).
    pub fn to_table(&self, limit: usize, width: u16) -> String {
        let mut t = super::new_table(width);
        t.set_header(vec!["count", "shallow", "retained", "type"]);
        let take = self.shown(limit);
        for l in &self.types[..take] {
            t.add_row(vec![
                l.count.to_string(),
                human_bytes(l.shallow_bytes),
                human_bytes(l.retained_bytes),
                l.type_name.clone(),
            ]);
        }
        let mut s = t.to_string();
        if take < self.types.len() {
            s.push_str(&format!("\n({} more types)", self.types.len() - take));
        }
        s.push('\n');
        s.push_str(&super::warning_lines(&self.warnings));
        s.trim_end().to_string()
    }

    /// Lines shown for a limit (0: all).
    fn shown(&self, limit: usize) -> usize {
        if limit == 0 {
            self.types.len()
        } else {
            limit.min(self.types.len())
        }
    }

    /// Markdown for a ticket, at most `limit` lines (0: all).
    pub fn to_markdown(&self, limit: usize, command: &str) -> String {
        use super::md_code;
        let mut s = String::from(
            "## Heap by type\n\n| count | shallow | retained | type |\n|---:|---:|---:|---|\n",
        );
        let take = self.shown(limit);
        for l in &self.types[..take] {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                l.count,
                human_bytes(l.shallow_bytes),
                human_bytes(l.retained_bytes),
                md_code(&l.type_name)
            ));
        }
        if take < self.types.len() {
            s.push_str(&format!("\n{} more types.\n", self.types.len() - take));
        }
        s.push_str(&super::markdown_notes(&[], &self.warnings));
        s.push_str(&super::markdown_footer(command, &self.go_version, false));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::LineSets;

    #[test]
    fn a_line_set_holds_each_line_once() {
        let mut sets = LineSets::default();
        let one = sets.with(LineSets::EMPTY, 3);
        assert_ne!(one, LineSets::EMPTY);
        assert_eq!(sets.with(one, 3), one, "a line already there");
        let two = sets.with(one, 5);
        assert_eq!(sets.with(two, 3), two, "a line further up the set");
        assert_eq!(sets.with(two, u32::MAX), two, "no line");
        assert_eq!(sets.with(LineSets::EMPTY, 3), one, "the same set again");
        let mut lines: Vec<u32> = sets.lines(two).collect();
        lines.sort();
        assert_eq!(lines, [3, 5]);
        assert_eq!(sets.lines(LineSets::EMPTY).count(), 0);
    }
}
