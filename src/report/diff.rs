//! `coreheap diff`: what grew between two cores of one service, per map and per key group.

use std::collections::HashMap;

use serde::Serialize;

use super::maps::{HeapBytes, KeyGroup, MapLine, MapsReport};
use super::{human_bytes, Envelope};

/// How much growth fails the check (`--fail-over`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// More bytes than this.
    Bytes(u64),
    /// More than this percent of the size before.
    Percent(f64),
}

impl Threshold {
    /// `100MiB`, `1G`, `4096` or `20%`.
    pub fn parse(s: &str) -> Result<Threshold, String> {
        match s.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Threshold::Percent(v)),
                _ => Err(format!(
                    "{s:?} is not a percentage: give a number and %, e.g. 20%"
                )),
            },
            None => super::parse_size(s).map(Threshold::Bytes),
        }
    }

    /// Whether growing from `before` to `after` bytes is over the threshold. A percentage
    /// needs a size before: what was not there before is judged by the heap's growth.
    fn exceeded(&self, before: u64, after: u64) -> bool {
        let grown = after.saturating_sub(before);
        match *self {
            Threshold::Bytes(b) => grown > b,
            Threshold::Percent(p) => before > 0 && grown as f64 > before as f64 * p / 100.0,
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Bytes(b) => write!(f, "{}", human_bytes(*b)),
            Threshold::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// One core of the two: what it is and what its heap holds.
#[derive(Debug, Serialize)]
pub struct Side {
    /// The core's path as given.
    pub core: String,
    /// Go release.
    pub go_version: String,
    /// Heap totals.
    pub heap: HeapBytes,
    /// Maps found.
    pub maps_found: usize,
    /// Problems met reading this core.
    pub warnings: Vec<String>,
}

/// How a map changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Retains more bytes.
    Grown,
    /// Retains fewer bytes.
    Shrunk,
    /// Retains the same bytes.
    Unchanged,
    /// Only in the later core.
    Appeared,
    /// Only in the earlier core.
    Disappeared,
}

/// A key group in both cores (zeros on the side it is missing from).
#[derive(Debug, Serialize)]
pub struct GroupDiff {
    /// The prefix or shape.
    pub prefix: String,
    /// Entries before.
    pub entries_before: u64,
    /// Entries after.
    pub entries_after: u64,
    /// Bytes the group's entries retained before.
    pub retained_bytes_before: u64,
    /// Bytes they retain after.
    pub retained_bytes_after: u64,
    /// After less before.
    pub growth_bytes: i64,
    /// The group opened, largest growth first.
    pub children: Vec<GroupDiff>,
    /// Objects the group's entries retained before and after, when counted (for profiles;
    /// not written out).
    #[serde(skip)]
    pub objects: (u64, u64),
}

/// A map in both cores, matched by owner (zeros on the side it is missing from).
#[derive(Debug, Serialize)]
pub struct MapDiff {
    /// The path from a root naming the map.
    pub owner: String,
    /// How it changed.
    pub change: Change,
    /// `classic`, `swiss` or `sync.Map` (of the later core when both have it).
    pub implementation: String,
    /// Key type.
    pub key_type: String,
    /// Value type.
    pub value_type: String,
    /// Entries before.
    pub entries_before: u64,
    /// Entries after.
    pub entries_after: u64,
    /// Bytes the map retained before.
    pub retained_bytes_before: u64,
    /// Bytes it retains after.
    pub retained_bytes_after: u64,
    /// After less before.
    pub growth_bytes: i64,
    /// Growth as a percentage of the bytes before (`null` when there were none).
    pub growth_percent: Option<f64>,
    /// What each entry alone kept alive, summed, before.
    pub entries_retained_bytes_before: u64,
    /// The same, after.
    pub entries_retained_bytes_after: u64,
    /// Key groups, largest growth first.
    pub groups: Vec<GroupDiff>,
    /// The root its owner path starts from (for profiles; not written out).
    #[serde(skip)]
    pub root: String,
    /// It lies inside another map (see `MapLine::inside`; not written out).
    #[serde(skip)]
    pub inside: bool,
    /// Objects the map retained before and after, when counted (not written out).
    #[serde(skip)]
    pub objects: (u64, u64),
    /// Objects its entries retained before and after, when counted (not written out).
    #[serde(skip)]
    pub entries_objects: (u64, u64),
}

/// What `--fail-over` found.
#[derive(Debug, Serialize)]
pub struct FailOver {
    /// The threshold as given.
    pub threshold: String,
    /// What grew over it (the heap, maps), one line each; empty when nothing did.
    pub exceeded: Vec<String>,
}

/// The `diff` report.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    /// The earlier core.
    pub before: Side,
    /// The later core.
    pub after: Side,
    /// Reachable heap after less before.
    pub heap_growth_bytes: i64,
    /// Maps, largest growth (or shrinkage) first.
    pub maps: Vec<MapDiff>,
    /// Maps compared in all (those listed and those cut by `--top`).
    pub maps_compared: usize,
    /// The growth check, when asked for.
    pub fail_over: Option<FailOver>,
    /// Both cores' warnings, each led by the core it is about (`before: `, `after: `).
    pub warnings: Vec<String>,
    /// Keys were redacted.
    pub redacted: bool,
}

/// How a diff is made and shown.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Maps listed (0: all).
    pub top: usize,
    /// Key groups listed per level.
    pub groups: usize,
    /// The growth check.
    pub fail_over: Option<Threshold>,
}

/// Signed difference of two byte counts.
fn growth(before: u64, after: u64) -> i64 {
    (i128::from(after) - i128::from(before)).clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

impl DiffReport {
    /// Compares two `maps` reports of one service; `before`'s key groups were made to
    /// follow `after`'s (see [`super::maps::MapsOptions::guides`]).
    pub fn compare(
        (before_core, before): (String, MapsReport),
        (after_core, after): (String, MapsReport),
        opts: &DiffOptions,
    ) -> DiffReport {
        // Maps by owner; several of one owner pair up in their order.
        let mut earlier: HashMap<&str, Vec<&MapLine>> = HashMap::new();
        for m in &before.maps {
            earlier.entry(m.owner.as_str()).or_default().push(m);
        }
        for list in earlier.values_mut() {
            list.reverse();
        }
        let mut maps: Vec<MapDiff> = Vec::new();
        for m in &after.maps {
            let old = earlier.get_mut(m.owner.as_str()).and_then(|l| l.pop());
            maps.push(map_diff(old, Some(m), opts.groups));
        }
        let mut gone: Vec<&MapLine> = earlier.into_values().flatten().collect();
        gone.sort_by(|x, y| x.owner.cmp(&y.owner));
        maps.extend(
            gone.into_iter()
                .map(|m| map_diff(Some(m), None, opts.groups)),
        );
        maps.sort_by(|x, y| {
            (y.growth_bytes
                .unsigned_abs()
                .cmp(&x.growth_bytes.unsigned_abs()))
            .then(x.owner.cmp(&y.owner))
        });
        let fail_over = opts.fail_over.map(|t| FailOver {
            threshold: t.to_string(),
            exceeded: exceeded(t, &before.heap, &after.heap, &maps),
        });
        let maps_compared = maps.len();
        if opts.top > 0 {
            maps.truncate(opts.top);
        }
        let side = |core: String, r: MapsReport| Side {
            core,
            go_version: r.go_version,
            heap: r.heap,
            maps_found: r.maps_found,
            warnings: r.warnings,
        };
        let warnings = (before.warnings.iter().map(|w| format!("before: {w}")))
            .chain(after.warnings.iter().map(|w| format!("after: {w}")))
            .collect();
        DiffReport {
            warnings,
            heap_growth_bytes: growth(before.heap.reachable_bytes, after.heap.reachable_bytes),
            maps,
            maps_compared,
            fail_over,
            redacted: after.redacted,
            before: side(before_core, before),
            after: side(after_core, after),
        }
    }

    /// Whether `--fail-over` was given and something grew over it.
    pub fn failed(&self) -> bool {
        self.fail_over
            .as_ref()
            .is_some_and(|f| !f.exceeded.is_empty())
    }

    /// The JSON document.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&Envelope::new("coreheap/diff/v1", self))
    }

    /// One sentence saying what grew.
    pub fn summary(&self) -> String {
        let (b, a) = (
            self.before.heap.reachable_bytes,
            self.after.heap.reachable_bytes,
        );
        let count = |c: Change| self.maps.iter().filter(|m| m.change == c).count();
        let mut s = format!(
            "The reachable heap went from {} to {}, {}{}; of {} maps compared, {} grew, {} shrank, {} appeared, {} disappeared.",
            human_bytes(b),
            human_bytes(a),
            signed_bytes(self.heap_growth_bytes),
            percent_text(b, a),
            self.maps_compared,
            count(Change::Grown),
            count(Change::Shrunk),
            count(Change::Appeared),
            count(Change::Disappeared),
        );
        if let Some(m) = self.maps.first().filter(|m| m.growth_bytes > 0) {
            s.push_str(&format!(
                " The most growth: {}, {}{} and {} entries.",
                m.owner,
                signed_bytes(m.growth_bytes),
                percent_text(m.retained_bytes_before, m.retained_bytes_after),
                signed(growth(m.entries_before, m.entries_after))
            ));
        }
        s
    }

    /// A table for people, `width` columns wide: a row per map, its key groups below it.
    pub fn to_table(&self, width: u16) -> String {
        let mut t = super::new_table(width);
        t.set_header(vec!["growth", "before", "after", "entries", "map"]);
        for m in &self.maps {
            t.add_row(vec![
                format!(
                    "{}{}",
                    signed_bytes(m.growth_bytes),
                    percent_text(m.retained_bytes_before, m.retained_bytes_after)
                ),
                human_bytes(m.retained_bytes_before),
                human_bytes(m.retained_bytes_after),
                entries_text(m.entries_before, m.entries_after),
                format!("{}  {}", m.owner, change_note(m))
                    .trim_end()
                    .to_string(),
            ]);
            let mut rows = Vec::new();
            group_rows(&m.groups, 1, &mut rows);
            for (g, text) in rows {
                t.add_row(vec![
                    signed_bytes(g.growth_bytes),
                    human_bytes(g.retained_bytes_before),
                    human_bytes(g.retained_bytes_after),
                    entries_text(g.entries_before, g.entries_after),
                    text,
                ]);
            }
        }
        let mut out = super::led_table(self.summary(), &mut t);
        if self.maps_compared > self.maps.len() {
            out.push_str(&format!(
                "\n… {} more maps (--top 0 lists them)",
                self.maps_compared - self.maps.len()
            ));
        }
        out.push_str("\nbefore, after: bytes retained in each core; entries: growth (before → after); key groups (·) follow the later core's.");
        out.push_str(&self.check_lines("\n"));
        out.push('\n');
        out.push_str(super::warning_lines(&self.warnings).trim_end());
        out.trim_end().to_string()
    }

    /// Markdown for a ticket.
    pub fn to_markdown(&self, command: &str) -> String {
        use super::{md_code, md_text};
        let mut s = format!("## What grew\n\n{}\n\n", md_text(&self.summary()));
        s.push_str("| growth | before | after | entries | map | change |\n");
        s.push_str("|---:|---:|---:|---:|---|---|\n");
        for m in &self.maps {
            s.push_str(&format!(
                "| {}{} | {} | {} | {} | {} | {} |\n",
                signed_bytes(m.growth_bytes),
                percent_text(m.retained_bytes_before, m.retained_bytes_after),
                human_bytes(m.retained_bytes_before),
                human_bytes(m.retained_bytes_after),
                md_text(&entries_text(m.entries_before, m.entries_after)),
                md_code(&m.owner),
                change_word(m.change)
            ));
        }
        for m in self.maps.iter().filter(|m| !m.groups.is_empty()).take(5) {
            s.push_str(&format!("\n### Keys of {}\n\n", md_code(&m.owner)));
            s.push_str(
                "| group | growth | before | after | entries |\n|---|---:|---:|---:|---:|\n",
            );
            let mut rows = Vec::new();
            group_rows(&m.groups, 0, &mut rows);
            for (g, text) in rows {
                let bare = text.trim_start_matches("· ");
                let depth = (text.len() - bare.len()) / "· ".len();
                s.push_str(&format!(
                    "| {}{} | {} | {} | {} | {} |\n",
                    "&nbsp;&nbsp;".repeat(depth),
                    md_code(bare),
                    signed_bytes(g.growth_bytes),
                    human_bytes(g.retained_bytes_before),
                    human_bytes(g.retained_bytes_after),
                    md_text(&entries_text(g.entries_before, g.entries_after)),
                ));
            }
        }
        let checks = self.check_lines("\n- ");
        if !checks.is_empty() {
            s.push_str(&format!("\n### Growth check\n{}\n", md_text_lines(&checks)));
        }
        s.push_str(&super::markdown_notes(&[], &self.warnings));
        s.push_str(&super::markdown_footer(
            command,
            &format!("{} → {}", self.before.go_version, self.after.go_version),
            self.redacted,
        ));
        s
    }

    /// The growth check's verdict, each line after `lead` (nothing without `--fail-over`).
    fn check_lines(&self, lead: &str) -> String {
        let Some(f) = &self.fail_over else {
            return String::new();
        };
        if f.exceeded.is_empty() {
            return format!("{lead}Nothing grew by more than {}.", f.threshold);
        }
        let mut s = format!("{lead}Grew by more than {} (--fail-over):", f.threshold);
        for e in &f.exceeded {
            s.push_str(&format!("{lead}  {e}"));
        }
        s
    }
}

/// Lines of Markdown list items, their text escaped.
fn md_text_lines(lines: &str) -> String {
    (lines.split('\n'))
        .map(|l| match l.strip_prefix("- ") {
            Some(rest) => format!("- {}", super::md_text(rest)),
            None => super::md_text(l),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What grew over the threshold: the heap, then each map, one line each.
fn exceeded(t: Threshold, before: &HeapBytes, after: &HeapBytes, maps: &[MapDiff]) -> Vec<String> {
    let line = |what: &str, b: u64, a: u64| {
        format!(
            "{what}: {}{} ({} → {})",
            signed_bytes(growth(b, a)),
            percent_text(b, a),
            human_bytes(b),
            human_bytes(a)
        )
    };
    let mut out = Vec::new();
    let (b, a) = (before.reachable_bytes, after.reachable_bytes);
    if t.exceeded(b, a) {
        out.push(line("reachable heap", b, a));
    }
    for m in maps {
        if t.exceeded(m.retained_bytes_before, m.retained_bytes_after) {
            out.push(line(
                &m.owner,
                m.retained_bytes_before,
                m.retained_bytes_after,
            ));
        }
    }
    out
}

/// One map of the two cores.
fn map_diff(before: Option<&MapLine>, after: Option<&MapLine>, groups: usize) -> MapDiff {
    let get = |m: Option<&MapLine>, f: fn(&MapLine) -> u64| m.map_or(0, f);
    let either = after.or(before);
    let text = |f: fn(&MapLine) -> String| either.map(f).unwrap_or_default();
    let (rb, ra) = (
        get(before, |m| m.retained_bytes),
        get(after, |m| m.retained_bytes),
    );
    let change = match (before, after) {
        (None, _) => Change::Appeared,
        (_, None) => Change::Disappeared,
        _ if ra > rb => Change::Grown,
        _ if ra < rb => Change::Shrunk,
        _ => Change::Unchanged,
    };
    let no_groups: &[KeyGroup] = &[];
    MapDiff {
        owner: text(|m| m.owner.clone()),
        change,
        implementation: text(|m| m.implementation.name().to_string()),
        key_type: text(|m| m.key_type.clone()),
        value_type: text(|m| m.value_type.clone()),
        entries_before: get(before, |m| m.entries),
        entries_after: get(after, |m| m.entries),
        retained_bytes_before: rb,
        retained_bytes_after: ra,
        growth_bytes: growth(rb, ra),
        growth_percent: (rb > 0).then(|| (ra as f64 - rb as f64) / rb as f64 * 100.0),
        entries_retained_bytes_before: get(before, |m| m.entries_retained_bytes),
        entries_retained_bytes_after: get(after, |m| m.entries_retained_bytes),
        groups: group_diffs(
            before.map_or(no_groups, |m| &m.groups),
            after.map_or(no_groups, |m| &m.groups),
            groups,
        ),
        root: either.map(|m| m.root.clone()).unwrap_or_default(),
        inside: either.is_some_and(|m| m.inside),
        objects: (
            get(before, |m| m.retained_objects),
            get(after, |m| m.retained_objects),
        ),
        entries_objects: (
            get(before, |m| m.entries_retained_objects),
            get(after, |m| m.entries_retained_objects),
        ),
    }
}

/// Two cores' key groups of one map, paired by label, largest growth first, at most `width`.
fn group_diffs(before: &[KeyGroup], after: &[KeyGroup], width: usize) -> Vec<GroupDiff> {
    let mut earlier: HashMap<(&[u8], usize), &KeyGroup> = (before.iter())
        .map(|g| ((g.label.as_slice(), g.depth), g))
        .collect();
    let mut out: Vec<GroupDiff> = Vec::new();
    let pair = |b: Option<&KeyGroup>, a: Option<&KeyGroup>| {
        let get = |g: Option<&KeyGroup>, f: fn(&KeyGroup) -> u64| g.map_or(0, f);
        let no_groups: &[KeyGroup] = &[];
        let (rb, ra) = (get(b, |g| g.retained_bytes), get(a, |g| g.retained_bytes));
        GroupDiff {
            prefix: a.or(b).map(|g| g.prefix.clone()).unwrap_or_default(),
            entries_before: get(b, |g| g.entries),
            entries_after: get(a, |g| g.entries),
            retained_bytes_before: rb,
            retained_bytes_after: ra,
            growth_bytes: growth(rb, ra),
            children: group_diffs(
                b.map_or(no_groups, |g| &g.children),
                a.map_or(no_groups, |g| &g.children),
                width,
            ),
            objects: (
                get(b, |g| g.retained_objects),
                get(a, |g| g.retained_objects),
            ),
        }
    };
    for a in after {
        let b = earlier.remove(&(a.label.as_slice(), a.depth));
        out.push(pair(b, Some(a)));
    }
    // Groups only the earlier core has, in its order.
    for b in before {
        if earlier.remove(&(b.label.as_slice(), b.depth)).is_some() {
            out.push(pair(Some(b), None));
        }
    }
    out.sort_by(|x, y| {
        (y.growth_bytes
            .unsigned_abs()
            .cmp(&x.growth_bytes.unsigned_abs()))
        .then(y.retained_bytes_after.cmp(&x.retained_bytes_after))
        .then(x.prefix.cmp(&y.prefix))
    });
    out.truncate(width);
    out
}

/// Rows of key groups and their children, indented by level: the group and its label.
fn group_rows<'g>(groups: &'g [GroupDiff], level: usize, rows: &mut Vec<(&'g GroupDiff, String)>) {
    for g in groups {
        let label = if g.prefix.is_empty() {
            "(no prefix)"
        } else {
            &g.prefix
        };
        rows.push((g, format!("{}{label}", "· ".repeat(level))));
        group_rows(&g.children, level + 1, rows);
    }
}

/// `+5700 (4700 → 10400)`.
fn entries_text(before: u64, after: u64) -> String {
    format!("{} ({before} → {after})", signed(growth(before, after)))
}

/// A count with its sign.
fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// Bytes with their sign: `+1.19 MiB`, `-50.0 KiB`, `0 B`.
fn signed_bytes(n: i64) -> String {
    match n {
        0 => "0 B".to_string(),
        n if n > 0 => format!("+{}", human_bytes(n.unsigned_abs())),
        n => format!("-{}", human_bytes(n.unsigned_abs())),
    }
}

/// ` (+158.0%)` of growth from `before`, or nothing when there was nothing before.
fn percent_text(before: u64, after: u64) -> String {
    if before == 0 {
        return String::new();
    }
    let p = (after as f64 - before as f64) / before as f64 * 100.0;
    format!(" ({}{p:.1}%)", if p > 0.0 { "+" } else { "" })
}

/// What happened to a map, for a row.
fn change_note(m: &MapDiff) -> &'static str {
    match m.change {
        Change::Appeared => "(new)",
        Change::Disappeared => "(gone)",
        _ => "",
    }
}

/// What happened to a map, as a word.
fn change_word(c: Change) -> &'static str {
    match c {
        Change::Grown => "grown",
        Change::Shrunk => "shrunk",
        Change::Unchanged => "unchanged",
        Change::Appeared => "appeared",
        Change::Disappeared => "disappeared",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implementation_names_are_those_json_writes() {
        use crate::maps::MapImpl;
        for i in [MapImpl::Classic, MapImpl::Swiss, MapImpl::SyncMap] {
            assert_eq!(serde_json::to_value(i).unwrap(), i.name());
        }
    }

    #[test]
    fn thresholds_take_sizes_and_percentages() {
        assert_eq!(Threshold::parse("100MiB"), Ok(Threshold::Bytes(100 << 20)));
        assert_eq!(Threshold::parse("20%"), Ok(Threshold::Percent(20.0)));
        assert_eq!(Threshold::parse(" 2.5 %"), Ok(Threshold::Percent(2.5)));
        for bad in ["x%", "-1%", "%", "10Q"] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_percentage_needs_a_size_before() {
        let t = Threshold::Percent(20.0);
        assert!(t.exceeded(100, 121));
        assert!(!t.exceeded(100, 120));
        assert!(!t.exceeded(0, 1 << 30));
        assert!(!t.exceeded(100, 10));
        let b = Threshold::Bytes(10);
        assert!(b.exceeded(0, 11));
        assert!(!b.exceeded(100, 110));
    }

    #[test]
    fn signs_and_percentages_read_as_growth() {
        assert_eq!(signed_bytes(1536), "+1.50 KiB");
        assert_eq!(signed_bytes(-2048), "-2.00 KiB");
        assert_eq!(percent_text(200, 300), " (+50.0%)");
        assert_eq!(percent_text(200, 100), " (-50.0%)");
        assert_eq!(percent_text(0, 100), "");
        assert_eq!(entries_text(4700, 10400), "+5700 (4700 → 10400)");
        assert_eq!(growth(u64::MAX, 0), i64::MIN);
    }
}
