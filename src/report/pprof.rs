//! Reports as pprof profiles (`profile.proto`, gzipped) for `go tool pprof`: each sample's
//! stack is the ownership path read root-first (root, owner, map, key groups, type).

use std::collections::HashMap;
use std::io::Write;

use prost::Message;

use super::diff::{DiffReport, GroupDiff, MapDiff};
use super::histogram::HistogramReport;
use super::maps::{KeyGroup, MapLine, MapsReport};
use super::top::TopReport;

/// The messages of `proto/profile.proto`, generated at build time.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/perftools.profiles.rs"));
}

/// The values every sample carries, in this order.
const SAMPLE_TYPES: [(&str, &str); 3] = [
    ("retained_space", "bytes"),
    ("retained_objects", "count"),
    ("inuse_space", "bytes"),
];

/// A label's value: text, or a number with its unit.
enum Label {
    Text(String),
    Count(i64),
}

/// A profile being built: strings, frames and samples.
struct Builder {
    profile: proto::Profile,
    strings: HashMap<String, i64>,
    frames: HashMap<String, u64>,
}

impl Builder {
    /// An empty profile with coreheap's sample types and `comments`.
    fn new(comments: &[String]) -> Builder {
        let mut b = Builder {
            profile: proto::Profile::default(),
            strings: HashMap::new(),
            frames: HashMap::new(),
        };
        b.string("");
        for (kind, unit) in SAMPLE_TYPES {
            let vt = proto::ValueType {
                r#type: b.string(kind),
                unit: b.string(unit),
            };
            b.profile.sample_type.push(vt);
        }
        b.profile.default_sample_type = b.string(SAMPLE_TYPES[0].0);
        for c in comments {
            let id = b.string(c);
            b.profile.comment.push(id);
        }
        b
    }

    /// The string table index of `s`.
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), i);
        i
    }

    /// The location of a frame named `name` (one function, one location per name).
    fn frame(&mut self, name: &str) -> u64 {
        if let Some(&id) = self.frames.get(name) {
            return id;
        }
        let id = self.frames.len() as u64 + 1;
        let n = self.string(name);
        self.profile.function.push(proto::Function {
            id,
            name: n,
            system_name: n,
            ..Default::default()
        });
        self.profile.location.push(proto::Location {
            id,
            line: vec![proto::Line {
                function_id: id,
                ..Default::default()
            }],
            ..Default::default()
        });
        self.frames.insert(name.to_string(), id);
        id
    }

    /// A sample: its stack root first, its values in [`SAMPLE_TYPES`] order. Samples whose
    /// values are all zero are left out.
    fn sample(&mut self, stack: &[String], values: [i64; 3], labels: &[(&str, Label)]) {
        if values.iter().all(|&v| v == 0) {
            return;
        }
        // pprof lists the leaf first.
        let location_id = stack.iter().rev().map(|f| self.frame(f)).collect();
        let label = (labels.iter())
            .map(|(k, v)| {
                let key = self.string(k);
                match v {
                    Label::Text(t) => proto::Label {
                        key,
                        str: self.string(t),
                        ..Default::default()
                    },
                    Label::Count(n) => proto::Label {
                        key,
                        num: *n,
                        num_unit: self.string("count"),
                        ..Default::default()
                    },
                }
            })
            .collect();
        self.profile.sample.push(proto::Sample {
            location_id,
            value: values.to_vec(),
            label,
        });
    }

    /// The profile, encoded and gzipped.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&self.profile.encode_to_vec())?;
        gz.finish()
    }
}

/// A count or byte total as a profile value.
fn value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// After less before, as a profile value.
fn delta((before, after): (u64, u64)) -> i64 {
    value(after).saturating_sub(value(before))
}

/// The frame naming a key group of the map `owner`.
fn group_frame(owner: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("{owner}[(no prefix)]")
    } else {
        format!("{owner}[{prefix}…]")
    }
}

/// The frames from the root to a map: its root when that is not the map's own name, then the
/// map, named by its owner and type.
fn map_stack(root: &str, owner: &str, key: &str, value: &str) -> Vec<String> {
    let map = format!("{owner} map[{key}]{value}");
    if root.is_empty() || root == owner {
        vec![map]
    } else {
        vec![root.to_string(), map]
    }
}

/// A frame for what a map holds beyond its listed key groups.
const MAP_REST: &str = "(map structures, values its entries share, keys not listed)";
/// A frame for the reachable heap no map holds.
const NO_MAP: &str = "(not held by a map)";
/// A frame for the allocated objects no root reaches.
const UNREACHABLE: &str = "(unreachable)";

/// The `maps` report as a profile: the reachable heap split by owner, map and key group, each
/// object once (cumulative values of a frame are what it retains), and the unreachable heap.
/// Object counts need the report gathered with objects counted (`MapsInput::objects`).
pub fn maps(r: &MapsReport, comments: &[String]) -> std::io::Result<Vec<u8>> {
    let mut b = Builder::new(comments);
    let (mut bytes, mut objects) = (0u64, 0u64);
    for m in r.maps.iter().filter(|m| !m.inside) {
        map_samples(&mut b, m);
        bytes += m.retained_bytes;
        objects += m.retained_objects;
    }
    let h = &r.heap;
    let rest = h.reachable_bytes.saturating_sub(bytes);
    let rest_objects = h.reachable_objects.saturating_sub(objects);
    b.sample(
        &[NO_MAP.to_string()],
        [value(rest), value(rest_objects), value(rest)],
        &[],
    );
    b.sample(
        &[UNREACHABLE.to_string()],
        [0, 0, value(h.unreachable_bytes)],
        &[],
    );
    b.finish()
}

/// One map's samples: a leaf per key group (and the part of an opened group its children do
/// not list), and the rest of what the map retains.
fn map_samples(b: &mut Builder, m: &MapLine) {
    let base = map_stack(&m.root, &m.owner, &m.key_type, &m.value_type);
    let implementation = serde_json::to_value(m.implementation)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let labels = |entries: u64| {
        vec![
            ("map", Label::Text(m.owner.clone())),
            ("implementation", Label::Text(implementation.clone())),
            ("entries", Label::Count(value(entries))),
        ]
    };
    fn walk(
        b: &mut Builder,
        m: &MapLine,
        stack: &mut Vec<String>,
        groups: &[KeyGroup],
        labels: &dyn Fn(u64) -> Vec<(&'static str, Label)>,
    ) {
        for g in groups {
            stack.push(group_frame(&m.owner, &g.prefix));
            walk(b, m, stack, &g.children, labels);
            let sum = |f: fn(&KeyGroup) -> u64| g.children.iter().map(f).sum::<u64>();
            let own = g.retained_bytes.saturating_sub(sum(|c| c.retained_bytes));
            let objects = g
                .retained_objects
                .saturating_sub(sum(|c| c.retained_objects));
            let entries = g.entries.saturating_sub(sum(|c| c.entries));
            stack.push(m.value_type.clone());
            b.sample(
                stack,
                [value(own), value(objects), value(own)],
                &labels(entries),
            );
            stack.pop();
            stack.pop();
        }
    }
    let mut stack = base.clone();
    walk(b, m, &mut stack, &m.groups, &labels);
    let listed = |f: fn(&KeyGroup) -> u64| m.groups.iter().map(f).sum::<u64>();
    let rest = m
        .retained_bytes
        .saturating_sub(listed(|g| g.retained_bytes));
    let rest_objects = m
        .retained_objects
        .saturating_sub(listed(|g| g.retained_objects));
    let unlisted = m.entries.saturating_sub(listed(|g| g.entries));
    let mut stack = base;
    stack.push(MAP_REST.to_string());
    b.sample(
        &stack,
        [value(rest), value(rest_objects), value(rest)],
        &labels(unlisted),
    );
}

/// The `top` report as a profile: each retainer under the path from its root, its retained
/// bytes and objects, and its own (shallow) bytes as `inuse_space`.
pub fn top(r: &TopReport, comments: &[String]) -> std::io::Result<Vec<u8>> {
    let mut b = Builder::new(comments);
    for t in &r.retainers {
        let mut stack: Vec<String> = (t.path.iter().take(t.path.len().saturating_sub(1)))
            .map(|h| match &h.address {
                Some(a) => format!("{} @ {a}", h.label),
                None => h.label.clone(),
            })
            .collect();
        stack.push(format!("{} @ {}", t.type_name, t.address));
        b.sample(
            &stack,
            [
                value(t.retained_bytes),
                value(t.retained_objects),
                value(t.shallow_bytes),
            ],
            &[("owner", Label::Text(t.owner.clone()))],
        );
    }
    b.finish()
}

/// The `histogram` report as a profile: a one-frame sample per type with the bytes its
/// objects retain together, their count, and their own (shallow) bytes.
pub fn histogram(r: &HistogramReport, comments: &[String]) -> std::io::Result<Vec<u8>> {
    let mut b = Builder::new(comments);
    for t in &r.types {
        b.sample(
            std::slice::from_ref(&t.type_name),
            [
                value(t.retained_bytes),
                value(t.count),
                value(t.shallow_bytes),
            ],
            &[],
        );
    }
    b.finish()
}

/// The `diff` report as a profile of growth (after less before, negative where it shrank):
/// the `maps` profile's samples, each a delta, as `go tool pprof -diff_base` would show it.
pub fn diff(r: &DiffReport, comments: &[String]) -> std::io::Result<Vec<u8>> {
    let mut b = Builder::new(comments);
    let (mut bytes, mut objects) = ((0u64, 0u64), (0u64, 0u64));
    for m in r.maps.iter().filter(|m| !m.inside) {
        map_diff_samples(&mut b, m);
        bytes.0 += m.retained_bytes_before;
        bytes.1 += m.retained_bytes_after;
        objects.0 += m.objects.0;
        objects.1 += m.objects.1;
    }
    let (hb, ha) = (&r.before.heap, &r.after.heap);
    let rest = (
        hb.reachable_bytes.saturating_sub(bytes.0),
        ha.reachable_bytes.saturating_sub(bytes.1),
    );
    let rest_objects = (
        hb.reachable_objects.saturating_sub(objects.0),
        ha.reachable_objects.saturating_sub(objects.1),
    );
    b.sample(
        &[NO_MAP.to_string()],
        [delta(rest), delta(rest_objects), delta(rest)],
        &[],
    );
    let unreachable = (hb.unreachable_bytes, ha.unreachable_bytes);
    b.sample(&[UNREACHABLE.to_string()], [0, 0, delta(unreachable)], &[]);
    b.finish()
}

/// One map's growth samples, as [`map_samples`].
fn map_diff_samples(b: &mut Builder, m: &MapDiff) {
    let base = map_stack(&m.root, &m.owner, &m.key_type, &m.value_type);
    let labels = |entries: (u64, u64)| {
        vec![
            ("map", Label::Text(m.owner.clone())),
            ("implementation", Label::Text(m.implementation.clone())),
            ("entries_before", Label::Count(value(entries.0))),
            ("entries_after", Label::Count(value(entries.1))),
        ]
    };
    /// Before and after of `f` summed over `groups`.
    fn sum(groups: &[GroupDiff], f: fn(&GroupDiff) -> (u64, u64)) -> (u64, u64) {
        (groups.iter().map(f)).fold((0, 0), |(x, y), (a, b)| (x + a, y + b))
    }
    fn less((a, b): (u64, u64), (c, d): (u64, u64)) -> (u64, u64) {
        (a.saturating_sub(c), b.saturating_sub(d))
    }
    fn walk(
        b: &mut Builder,
        m: &MapDiff,
        stack: &mut Vec<String>,
        groups: &[GroupDiff],
        labels: &dyn Fn((u64, u64)) -> Vec<(&'static str, Label)>,
    ) {
        for g in groups {
            stack.push(group_frame(&m.owner, &g.prefix));
            walk(b, m, stack, &g.children, labels);
            let bytes = |g: &GroupDiff| (g.retained_bytes_before, g.retained_bytes_after);
            let own = less(bytes(g), sum(&g.children, bytes));
            let objects = less(g.objects, sum(&g.children, |c| c.objects));
            let entries = |g: &GroupDiff| (g.entries_before, g.entries_after);
            let own_entries = less(entries(g), sum(&g.children, entries));
            stack.push(m.value_type.clone());
            b.sample(
                stack,
                [delta(own), delta(objects), delta(own)],
                &labels(own_entries),
            );
            stack.pop();
            stack.pop();
        }
    }
    let mut stack = base.clone();
    walk(b, m, &mut stack, &m.groups, &labels);
    let bytes = |g: &GroupDiff| (g.retained_bytes_before, g.retained_bytes_after);
    let rest = less(
        (m.retained_bytes_before, m.retained_bytes_after),
        sum(&m.groups, bytes),
    );
    let rest_objects = less(m.objects, sum(&m.groups, |g| g.objects));
    let unlisted = less(
        (m.entries_before, m.entries_after),
        sum(&m.groups, |g| (g.entries_before, g.entries_after)),
    );
    let mut stack = base;
    stack.push(MAP_REST.to_string());
    b.sample(
        &stack,
        [delta(rest), delta(rest_objects), delta(rest)],
        &labels(unlisted),
    );
}

/// Decodes a gzipped profile (for tests and checks).
pub fn decode(gzipped: &[u8]) -> std::io::Result<proto::Profile> {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzipped), &mut raw)?;
    proto::Profile::decode(raw.as_slice()).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_share_frames_and_strings_and_list_the_leaf_first() {
        let mut b = Builder::new(&["a comment".to_string()]);
        let stack = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        b.sample(&stack(&["root", "map", "group"]), [10, 1, 10], &[]);
        b.sample(
            &stack(&["root", "map", "other"]),
            [5, 1, 5],
            &[("entries", Label::Count(3))],
        );
        b.sample(&stack(&["nothing"]), [0, 0, 0], &[]);
        let p = decode(&b.finish().unwrap()).unwrap();
        assert_eq!(p.sample.len(), 2);
        assert_eq!(p.function.len(), 4);
        let name = |loc: u64| {
            let f = &p.function[(loc - 1) as usize];
            p.string_table[f.name as usize].clone()
        };
        assert_eq!(name(p.sample[0].location_id[0]), "group");
        assert_eq!(name(p.sample[0].location_id[2]), "root");
        assert_eq!(p.sample[1].label[0].num, 3);
        let types: Vec<&str> = (p.sample_type.iter())
            .map(|t| p.string_table[t.r#type as usize].as_str())
            .collect();
        assert_eq!(types, ["retained_space", "retained_objects", "inuse_space"]);
        assert_eq!(p.string_table[p.comment[0] as usize], "a comment");
    }
}
