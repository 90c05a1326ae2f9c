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

/// A map's or a key group's figures in two cores, (before, after); a single core's are
/// (0, figure), so that one core's profile is its growth from nothing.
#[derive(Clone, Copy, Default)]
struct Figures {
    bytes: (u64, u64),
    objects: (u64, u64),
    entries: (u64, u64),
}

impl Figures {
    /// One core's figures.
    fn one(bytes: u64, objects: u64, entries: u64) -> Figures {
        Figures {
            bytes: (0, bytes),
            objects: (0, objects),
            entries: (0, entries),
        }
    }

    /// These figures less `o`'s, each side at least 0.
    fn less(self, o: Figures) -> Figures {
        let less =
            |(a, b): (u64, u64), (c, d): (u64, u64)| (a.saturating_sub(c), b.saturating_sub(d));
        Figures {
            bytes: less(self.bytes, o.bytes),
            objects: less(self.objects, o.objects),
            entries: less(self.entries, o.entries),
        }
    }

    /// The figures of `all` together.
    fn sum(all: impl Iterator<Item = Figures>) -> Figures {
        let add = |(a, b): (u64, u64), (c, d): (u64, u64)| (a + c, b + d);
        all.fold(Figures::default(), |t, f| Figures {
            bytes: add(t.bytes, f.bytes),
            objects: add(t.objects, f.objects),
            entries: add(t.entries, f.entries),
        })
    }

    /// A sample's values: retained bytes, retained objects and in-use bytes, after less before.
    fn values(self) -> [i64; 3] {
        [delta(self.bytes), delta(self.objects), delta(self.bytes)]
    }
}

/// A key group as a profile shows it.
struct GroupNode {
    prefix: String,
    figures: Figures,
    children: Vec<GroupNode>,
}

impl GroupNode {
    /// A key group of one core.
    fn of_group(g: &KeyGroup) -> GroupNode {
        GroupNode {
            prefix: g.prefix.clone(),
            figures: Figures::one(g.retained_bytes, g.retained_objects, g.entries),
            children: g.children.iter().map(GroupNode::of_group).collect(),
        }
    }

    /// A key group of two cores.
    fn of_diff(g: &GroupDiff) -> GroupNode {
        GroupNode {
            prefix: g.prefix.clone(),
            figures: Figures {
                bytes: (g.retained_bytes_before, g.retained_bytes_after),
                objects: g.objects,
                entries: (g.entries_before, g.entries_after),
            },
            children: g.children.iter().map(GroupNode::of_diff).collect(),
        }
    }
}

/// A map as a profile shows it.
struct MapNode {
    root: String,
    owner: String,
    key_type: String,
    value_type: String,
    implementation: String,
    figures: Figures,
    groups: Vec<GroupNode>,
}

impl MapNode {
    /// A map of one core.
    fn of_line(m: &MapLine) -> MapNode {
        MapNode {
            root: m.root.clone(),
            owner: m.owner.clone(),
            key_type: m.key_type.clone(),
            value_type: m.value_type.clone(),
            implementation: m.implementation.name().to_string(),
            figures: Figures::one(m.retained_bytes, m.retained_objects, m.entries),
            groups: m.groups.iter().map(GroupNode::of_group).collect(),
        }
    }

    /// A map of two cores.
    fn of_diff(m: &MapDiff) -> MapNode {
        MapNode {
            root: m.root.clone(),
            owner: m.owner.clone(),
            key_type: m.key_type.clone(),
            value_type: m.value_type.clone(),
            implementation: m.implementation.clone(),
            figures: Figures {
                bytes: (m.retained_bytes_before, m.retained_bytes_after),
                objects: m.objects,
                entries: (m.entries_before, m.entries_after),
            },
            groups: m.groups.iter().map(GroupNode::of_diff).collect(),
        }
    }
}

/// The reachable heap split by map and key group, each object once (cumulative values of a
/// frame are what it retains), then the reachable heap no map holds and the unreachable heap.
/// `heap` gives (reachable bytes, reachable objects, unreachable bytes); `two` says whether
/// the figures are of two cores (labels then give entries before and after).
fn heap_profile(
    maps: &[MapNode],
    heap: Figures,
    unreachable: (u64, u64),
    two: bool,
    comments: &[String],
) -> std::io::Result<Vec<u8>> {
    let mut b = Builder::new(comments);
    for m in maps {
        map_samples(&mut b, m, two);
    }
    let held = Figures::sum(maps.iter().map(|m| m.figures));
    b.sample(&[NO_MAP.to_string()], heap.less(held).values(), &[]);
    b.sample(&[UNREACHABLE.to_string()], [0, 0, delta(unreachable)], &[]);
    b.finish()
}

/// The `maps` report as a profile (see [`heap_profile`]). Object counts need the report
/// gathered with objects counted (`MapsInput::objects`).
pub fn maps(r: &MapsReport, comments: &[String]) -> std::io::Result<Vec<u8>> {
    let maps: Vec<MapNode> = (r.maps.iter())
        .filter(|m| !m.inside)
        .map(MapNode::of_line)
        .collect();
    let h = &r.heap;
    let heap = Figures::one(h.reachable_bytes, h.reachable_objects, 0);
    heap_profile(&maps, heap, (0, h.unreachable_bytes), false, comments)
}

/// One map's samples: a leaf per key group (and the part of an opened group its children do
/// not list), and the rest of what the map retains.
fn map_samples(b: &mut Builder, m: &MapNode, two: bool) {
    let labels = |entries: (u64, u64)| {
        let mut l = vec![
            ("map", Label::Text(m.owner.clone())),
            ("implementation", Label::Text(m.implementation.clone())),
        ];
        if two {
            l.push(("entries_before", Label::Count(value(entries.0))));
            l.push(("entries_after", Label::Count(value(entries.1))));
        } else {
            l.push(("entries", Label::Count(value(entries.1))));
        }
        l
    };
    fn walk(
        b: &mut Builder,
        m: &MapNode,
        stack: &mut Vec<String>,
        groups: &[GroupNode],
        labels: &dyn Fn((u64, u64)) -> Vec<(&'static str, Label)>,
    ) {
        for g in groups {
            stack.push(group_frame(&m.owner, &g.prefix));
            walk(b, m, stack, &g.children, labels);
            let own = g
                .figures
                .less(Figures::sum(g.children.iter().map(|c| c.figures)));
            stack.push(m.value_type.clone());
            b.sample(stack, own.values(), &labels(own.entries));
            stack.pop();
            stack.pop();
        }
    }
    let mut stack = map_stack(&m.root, &m.owner, &m.key_type, &m.value_type);
    walk(b, m, &mut stack, &m.groups, &labels);
    let rest = m
        .figures
        .less(Figures::sum(m.groups.iter().map(|g| g.figures)));
    stack.push(MAP_REST.to_string());
    b.sample(&stack, rest.values(), &labels(rest.entries));
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
    let maps: Vec<MapNode> = (r.maps.iter())
        .filter(|m| !m.inside)
        .map(MapNode::of_diff)
        .collect();
    let (hb, ha) = (&r.before.heap, &r.after.heap);
    let heap = Figures {
        bytes: (hb.reachable_bytes, ha.reachable_bytes),
        objects: (hb.reachable_objects, ha.reachable_objects),
        entries: (0, 0),
    };
    let unreachable = (hb.unreachable_bytes, ha.unreachable_bytes);
    heap_profile(&maps, heap, unreachable, true, comments)
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
