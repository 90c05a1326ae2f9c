//! Type names as Go writes them, the same in every report: `map[string]*big.Int`, `[]uint8`,
//! `*main.Session`, and the runtime's own map and channel structures named for what they are.

use crate::maps::keys::{short_type_name, split_key_value};

/// The runtime structures the linker names with angle brackets or `noalg.` (DWARF only), and
/// what each is of the map or channel it belongs to (`""`: the map or channel itself).
const INTERNAL: [(&str, &str, &str); 7] = [
    ("hash<", "map", ""),
    ("map<", "map", ""),
    ("table<", "map", "Swiss table"),
    ("bucket<", "map", "buckets"),
    ("hchan<", "chan", ""),
    ("waitq<", "chan", "wait queue"),
    ("sudog<", "chan", "waiting goroutine"),
];

/// A type's name for people: package paths cut to the package name, and the runtime's
/// internal map and channel types as the Go type they serve (`table<string,int64>` →
/// `map[string]int64 (Swiss table)`). `many`: the object holds several values of the type.
pub fn go_type(raw: &str, many: bool) -> String {
    let (pointer, inner) = match raw.strip_prefix('*') {
        Some(rest) => ("*", rest),
        None => ("", raw),
    };
    if let Some(t) = internal(inner) {
        // `[]*table<K,V>` and `*table<K,V>` are a Swiss map's directory.
        return match (pointer, t.as_str()) {
            ("*", _) if t.ends_with("(Swiss table)") => {
                t.replace("(Swiss table)", "(Swiss directory)")
            }
            (_, _) if many && t.ends_with("(Swiss group)") => {
                t.replace("(Swiss group)", "(Swiss group array)")
            }
            (_, _) if many && t.ends_with("(buckets)") => t,
            (p, _) if many => format!("[]{p}{t}"),
            (p, _) => format!("{p}{t}"),
        };
    }
    let name = short_type_name(raw);
    if many {
        format!("[]{name}")
    } else {
        name
    }
}

/// `map[K]V (what)` or `chan T (what)` for a runtime-internal type name, else `None`.
fn internal(name: &str) -> Option<String> {
    let with = |base: String, what: &str| {
        if what.is_empty() {
            base
        } else {
            format!("{base} ({what})")
        }
    };
    for (prefix, kind, what) in INTERNAL {
        let Some(args) = name.strip_prefix(prefix).and_then(|r| r.strip_suffix('>')) else {
            continue;
        };
        let base = match kind {
            "map" => {
                let (k, v) = split_key_value(args)?;
                format!("map[{}]{}", short_type_name(k), short_type_name(v))
            }
            _ => format!("chan {}", short_type_name(args)),
        };
        return Some(with(base, what));
    }
    // Swiss groups and classic buckets as the compiler names them: `noalg.map.group[K]V`.
    for (prefix, what) in [
        ("noalg.map.group[", "Swiss group"),
        ("noalg.map.bucket[", "buckets"),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let close = closing(rest)?;
            let (k, v) = (&rest[..close], &rest[close + 1..]);
            let base = format!("map[{}]{}", short_type_name(k), short_type_name(v));
            return Some(with(base, what));
        }
    }
    None
}

/// Where the `]` closing an opened `[` is in `rest` (the text after the `[`).
fn closing(rest: &str) -> Option<usize> {
    let mut depth = 1i32;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_structures_are_named_for_their_map_or_channel() {
        let cases = [
            ("hash<string,*math/big.Int>", false, "map[string]*big.Int"),
            ("map<string,int64>", false, "map[string]int64"),
            (
                "table<string,int64>",
                false,
                "map[string]int64 (Swiss table)",
            ),
            (
                "*table<string,[]uint8>",
                true,
                "map[string][]uint8 (Swiss directory)",
            ),
            (
                "noalg.map.group[string]*math/big.Int",
                true,
                "map[string]*big.Int (Swiss group array)",
            ),
            (
                "noalg.map.group[[4]int]map[string]int",
                false,
                "map[[4]int]map[string]int (Swiss group)",
            ),
            (
                "bucket<int64,*main.User>",
                true,
                "map[int64]*main.User (buckets)",
            ),
            (
                "hash<main.key,func(int, string)>",
                false,
                "map[main.key]func(int, string)",
            ),
            ("hchan<*main.Job>", false, "chan *main.Job"),
            ("math/big.Int", false, "big.Int"),
            ("*main.Session", false, "*main.Session"),
            ("uint8", true, "[]uint8"),
            ("sync.poolLocal", true, "[]sync.poolLocal"),
        ];
        for (raw, many, want) in cases {
            assert_eq!(go_type(raw, many), want, "{raw}");
        }
    }
}
