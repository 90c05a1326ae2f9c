//! Map keys as people read them, and the groups they fall into: prefixes and shapes.

use std::hash::BuildHasher;

use crate::dwarf::go_kind::{BOOL, FLOAT32, FLOAT64, SIGNED, STRING, UNSIGNED};
use crate::dwarf::{Dwarf, TypeKind, TypeRef};
use crate::memory::{Addr, Memory};
use crate::reader::Bytes;

/// Most bytes of a string key read from the core.
const MAX_KEY_BYTES: usize = 4096;

/// Reads a key or value of type `ty` at `addr` as text; `None` when it cannot be read.
pub fn render(dwarf: &Dwarf, mem: &Memory, ty: TypeRef, addr: Addr, depth: u32) -> Option<String> {
    let (_, info) = dwarf.resolve(ty).ok()?;
    if let Some(s) = string_at(dwarf, mem, ty, addr) {
        return Some(quote(&s));
    }
    let kind = info.go_kind.unwrap_or(0);
    let size = info.size;
    match &info.kind {
        TypeKind::Base if kind == BOOL => Some((mem.u8(addr).ok()? != 0).to_string()),
        TypeKind::Base if kind == FLOAT64 => Some(f64::from_bits(mem.u64(addr).ok()?).to_string()),
        TypeKind::Base if kind == FLOAT32 => Some(f32::from_bits(mem.u32(addr).ok()?).to_string()),
        TypeKind::Base if SIGNED.contains(&kind) => {
            let v = mem.uint(addr, size).ok()?;
            let shift = 64 - 8 * size.clamp(1, 8);
            Some((((v << shift) as i64) >> shift).to_string())
        }
        TypeKind::Base if UNSIGNED.contains(&kind) || size <= 8 => {
            Some(mem.uint(addr, size.clamp(1, 8)).ok()?.to_string())
        }
        TypeKind::Pointer(_) => Some(format!("{:#x}", mem.u64(addr).ok()?)),
        TypeKind::Struct(fields) if depth < 3 => {
            let parts: Vec<String> = fields
                .iter()
                .filter_map(|f| render(dwarf, mem, f.ty?, addr.offset(f.offset), depth + 1))
                .collect();
            Some(format!("{{{}}}", parts.join(", ")))
        }
        TypeKind::Array {
            elem: Some(e),
            count,
        } if depth < 3 => {
            let es = dwarf.resolve(*e).ok()?.1.size;
            let parts: Vec<String> = (0..(*count).min(16))
                .filter_map(|i| render(dwarf, mem, *e, addr.offset(i * es), depth + 1))
                .collect();
            Some(format!("[{}]", parts.join(" ")))
        }
        _ => Some(format!("<{} bytes>", size)),
    }
}

/// The bytes of a string value of type `ty` at `addr`, when `ty` is a string.
pub fn string_at(dwarf: &Dwarf, mem: &Memory, ty: TypeRef, addr: Addr) -> Option<String> {
    if !is_string(dwarf, ty) {
        return None;
    }
    string_bytes(mem, addr).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Whether values of type `ty` are Go strings.
pub fn is_string(dwarf: &Dwarf, ty: TypeRef) -> bool {
    dwarf
        .resolve(ty)
        .is_ok_and(|(_, info)| info.go_kind == Some(STRING))
}

/// The bytes of the Go string header at `addr` (at most 4096), borrowed from the core when
/// they lie in one piece.
pub fn string_bytes(mem: &Memory, addr: Addr) -> Option<std::borrow::Cow<'_, [u8]>> {
    let (p, n) = string_header(mem, addr)?;
    if n == 0 {
        return Some(std::borrow::Cow::Borrowed(&[]));
    }
    mem.read(p, n).ok()
}

/// The data pointer and length of the Go string header at `addr`, the length cut to the most
/// bytes read of a key (4096).
pub fn string_header(mem: &Memory, addr: Addr) -> Option<(Addr, usize)> {
    // One read for both words: keys are read by the million.
    let header = mem.read(addr, 16).ok()?;
    let (p, n) = (Bytes(&header).u64(0)?, Bytes(&header).u64(8)?);
    Some((Addr(p), n.min(MAX_KEY_BYTES as u64) as usize))
}

/// The slot itself, or what it points to for indirect keys and values.
pub fn deref(mem: &Memory, slot: Addr, indirect: bool) -> Addr {
    if indirect {
        mem.ptr(slot).unwrap_or(slot)
    } else {
        slot
    }
}

/// A string in Go's double-quoted form, with control and non-ASCII bytes escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => out.push_str(&c.escape_default().to_string()),
        }
    }
    out.push('"');
    out
}

/// Cuts text to at most `width` characters, marking the cut with `…`.
pub fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The key up to (not including) its `depth`-th delimiter; keys with fewer delimiters give
/// their longest delimited prefix (everything before the last delimiter, or "" with none).
pub fn prefix<'k>(key: &'k str, depth: usize, delimiters: &str) -> &'k str {
    let at = key.char_indices().filter(|(_, c)| delimiters.contains(*c));
    &key[..cut_before(at.map(|(i, _)| i), depth)]
}

/// A set of ASCII delimiters, to cut keys' raw bytes.
#[derive(Debug, Clone)]
pub struct AsciiDelimiters([bool; 128]);

impl AsciiDelimiters {
    /// The set, if every delimiter is ASCII.
    pub fn new(delimiters: &str) -> Option<AsciiDelimiters> {
        let mut set = [false; 128];
        for c in delimiters.chars() {
            *set.get_mut(usize::try_from(u32::from(c)).ok()?)? = true;
        }
        Some(AsciiDelimiters(set))
    }

    /// The set of the ASCII characters among `delimiters`.
    pub fn ascii_of(delimiters: &str) -> AsciiDelimiters {
        let mut set = [false; 128];
        for c in delimiters.chars().filter(char::is_ascii) {
            set[c as usize] = true;
        }
        AsciiDelimiters(set)
    }

    fn contains(&self, b: u8) -> bool {
        self.0.get(usize::from(b)).copied().unwrap_or(false)
    }
}

/// [`prefix`] of a key's raw bytes: the same cut, since an ASCII byte is never part of a
/// UTF-8 sequence, valid or not (so the lossy text of the prefix is the prefix of the text).
pub fn prefix_bytes<'k>(key: &'k [u8], depth: usize, delimiters: &AsciiDelimiters) -> &'k [u8] {
    let at = (key.iter().enumerate()).filter(|(_, &b)| delimiters.contains(b));
    &key[..cut_before(at.map(|(i, _)| i), depth)]
}

/// [`prefix_bytes`], and whether the key has a delimiter after the cut (then its prefix one
/// level deeper is longer: it goes on below the prefix).
pub fn prefix_bytes_and_more<'k>(
    key: &'k [u8],
    depth: usize,
    delimiters: &AsciiDelimiters,
) -> (&'k [u8], bool) {
    let mut at = (key.iter().enumerate())
        .filter(|(_, &b)| delimiters.contains(b))
        .map(|(i, _)| i);
    let cut = cut_before(at.by_ref(), depth);
    (&key[..cut], at.next().is_some())
}

/// The prefix at `depth` of a key whose prefix at `depth + 1` is `label`: the label before
/// its `depth`-th delimiter when it has that many, else the whole label. So keys grouped one
/// delimiter deeper regroup without being read again.
pub fn shallower_bytes<'k>(
    label: &'k [u8],
    depth: usize,
    delimiters: &AsciiDelimiters,
) -> &'k [u8] {
    let mut at = (label.iter().enumerate()).filter(|(_, &b)| delimiters.contains(b));
    match at.nth(depth.max(1) - 1) {
        Some((i, _)) => &label[..i],
        None => label,
    }
}

/// Where a prefix ends, given the delimiters' positions in order: at the `depth`-th one, else
/// the last one, else 0.
fn cut_before(delimiters: impl Iterator<Item = usize>, depth: usize) -> usize {
    delimiters.take(depth.max(1)).last().unwrap_or(0)
}

/// The key as a pattern: numbers become `{n}`, hex runs `{hex}`, UUIDs `{uuid}`, other
/// fields stay; delimiters are kept.
pub fn shape(key: &str, delimiters: &str) -> String {
    let mut out = String::new();
    let mut field = String::new();
    let flush = |field: &mut String, out: &mut String| {
        out.push_str(&classify(field));
        field.clear();
    };
    for c in key.chars() {
        if delimiters.contains(c) && !(c == '-' && looks_like_uuid_part(&field, key)) {
            flush(&mut field, &mut out);
            out.push(c);
        } else {
            field.push(c);
        }
    }
    flush(&mut field, &mut out);
    out
}

/// Keeps UUIDs together although `-` is a delimiter.
fn looks_like_uuid_part(field: &str, key: &str) -> bool {
    let _ = key;
    let hexish = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    hexish(field) && field.len() < 36 && (field.len() == 8 || field.contains('-'))
}

fn classify(field: &str) -> String {
    if field.is_empty() {
        return String::new();
    }
    if field.chars().all(|c| c.is_ascii_digit()) {
        return "{n}".into();
    }
    let b = field.as_bytes();
    if field.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && field.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    {
        return "{uuid}".into();
    }
    if field.len() >= 8
        && field.chars().all(|c| c.is_ascii_hexdigit())
        && field.chars().any(|c| c.is_ascii_digit())
    {
        return "{hex}".into();
    }
    field.to_string()
}

/// Delimiters coreheap splits keys on unless told otherwise: `eu-west`, `tenant-a` and
/// `user_42` stay one field.
pub const DEFAULT_DELIMITERS: &str = ":/|.,;= ";

/// What a key rendered from a non-string value (a struct, an array) is punctuated with.
pub const RENDER_PUNCTUATION: &str = "{}[](), \"";

/// Replaces every field of a key (the text between delimiters) by its class and a short hash
/// under a key chosen for this run, so that a report can leave the machine: equal fields stay
/// equal within one report, and nothing of a field but its class is shown.
#[derive(Debug)]
pub struct Redactor {
    state: std::hash::RandomState,
    delimiters: String,
    keep: usize,
}

impl Redactor {
    /// A redactor splitting keys on `delimiters` that keeps the first `keep` fields verbatim.
    pub fn new(delimiters: &str, keep: usize) -> Redactor {
        Redactor {
            state: std::hash::RandomState::new(),
            delimiters: delimiters.to_string(),
            keep,
        }
    }

    /// The redacted form of a key, or of a key group's label.
    pub fn key(&self, key: &str) -> String {
        self.text(key, "")
    }

    /// The redacted form of text that holds keys: fields end at the delimiters and at any of
    /// `extra` (the punctuation of a rendered struct key), which are kept.
    pub fn text(&self, text: &str, extra: &str) -> String {
        let mut out = String::with_capacity(text.len() + 16);
        let mut field = String::new();
        let mut n = 0;
        for c in text.chars() {
            if self.delimiters.contains(c) || extra.contains(c) {
                self.field(&field, n, &mut out);
                n += usize::from(!field.is_empty());
                field.clear();
                out.push(c);
            } else {
                field.push(c);
            }
        }
        self.field(&field, n, &mut out);
        out
    }

    /// Appends field number `n`: kept, or its class and hash.
    fn field(&self, field: &str, n: usize, out: &mut String) {
        if field.is_empty() {
            return;
        }
        if n < self.keep || PLACEHOLDERS.contains(&field) {
            out.push_str(field);
            return;
        }
        let class = match classify(field).as_str() {
            "{n}" => "n",
            "{hex}" => "hex",
            "{uuid}" => "uuid",
            _ if field.chars().all(|c| c.is_alphabetic()) => "a",
            _ if field
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_') =>
            {
                "w"
            }
            _ => "x",
        };
        let h = self.state.hash_one(field) as u32 & 0xff_ffff;
        out.push_str(&format!("{{{class}}}#{h:06x}"));
    }
}

/// The placeholders [`shape`] writes, kept as they are by redaction.
const PLACEHOLDERS: [&str; 3] = ["{n}", "{hex}", "{uuid}"];

/// Splits `K,V` at the comma outside brackets.
pub fn split_key_value(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '[' | '(' | '{' | '<' => depth += 1,
            ']' | ')' | '}' | '>' => depth -= 1,
            ',' if depth == 0 => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A Go type name as `%T` prints it: package paths shortened to the package name.
pub fn short_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match word.rfind('/') {
            Some(i) => out.push_str(&word[i + 1..]),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in name.chars() {
        if c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = ":/|.-_ ";

    #[test]
    fn prefix_cuts_before_the_nth_delimiter_or_the_last_one() {
        assert_eq!(prefix("acct:eu-west:00104729", 2, ":"), "acct:eu-west");
        assert_eq!(prefix("sess:9f86d081884c7d65", 2, ":"), "sess");
        assert_eq!(prefix("a:b:c:d", 2, ":"), "a:b");
        assert_eq!(prefix("eu", 2, ":"), "");
        assert_eq!(prefix("acct:eu-west:00104729", 1, D), "acct");
        assert_eq!(prefix("acct:eu-west:00104729", 2, D), "acct:eu");
    }

    #[test]
    fn prefix_of_raw_bytes_is_the_prefix_of_the_text() {
        let keys: [&[u8]; 7] = [
            b"acct:eu-west:00104729",
            b"a:b:c:d",
            b"eu",
            b"",
            "caf\u{e9}:cr\u{e8}me/br\u{fb}l\u{e9}e".as_bytes(),
            // Invalid UTF-8 next to delimiters: a cut-short sequence, a stray continuation.
            b"ab\xe2:\x80x.\xffz/q",
            b"\xe2\x82:\xe2\x82\xac.",
        ];
        let set = AsciiDelimiters::new(D).expect("the default delimiters are ASCII");
        for key in keys {
            let text = String::from_utf8_lossy(key);
            for depth in 0..5 {
                let cut = String::from_utf8_lossy(prefix_bytes(key, depth, &set));
                assert_eq!(cut, prefix(&text, depth, D), "{key:?} at depth {depth}");
            }
        }
        assert!(AsciiDelimiters::new(":\u{b7}").is_none());
    }

    /// Keys with delimiters in every place: doubled, leading, trailing, none, beside bytes that
    /// are not UTF-8.
    const CUT_KEYS: [&[u8]; 9] = [
        b"acct:eu-west:00104729",
        b"a:b:c:d",
        b"a::b",
        b":lead",
        b"eu",
        b"",
        b"trail:",
        b"trail::",
        b"ab\xe2:\x80x.\xffz/q",
    ];

    #[test]
    fn a_deeper_prefix_cut_back_is_the_prefix() {
        let set = AsciiDelimiters::new(D).expect("the default delimiters are ASCII");
        for key in CUT_KEYS {
            for depth in 1..6 {
                let deeper = prefix_bytes(key, depth + 1, &set);
                assert_eq!(
                    shallower_bytes(deeper, depth, &set),
                    prefix_bytes(key, depth, &set),
                    "{key:?} at depth {depth}"
                );
            }
        }
    }

    #[test]
    fn a_key_goes_on_below_its_prefix_when_the_next_level_cuts_it_longer() {
        let set = AsciiDelimiters::new(D).expect("the default delimiters are ASCII");
        let mut went_on = 0;
        for key in CUT_KEYS {
            for depth in 0..6 {
                let (cut, more) = prefix_bytes_and_more(key, depth, &set);
                assert_eq!(cut, prefix_bytes(key, depth, &set), "{key:?} at {depth}");
                let deeper = prefix_bytes(key, depth.max(1) + 1, &set);
                assert_eq!(more, deeper.len() > cut.len(), "{key:?} at {depth}");
                went_on += usize::from(more);
            }
        }
        // A key with n > 1 delimiters goes on at depths 0 (cut as 1) to n - 1: `acct:eu-west:..`,
        // `a:b:c:d` and the last (`:`, `.`, `/`) have 3, `a::b` and `trail::` 2, the rest 1 or 0.
        assert_eq!(went_on, 3 + 3 + 3 + 2 + 2);
    }

    #[test]
    fn shape_names_numbers_hex_and_uuids() {
        assert_eq!(shape("acct:eu-west:00104729", D), "acct:eu-west:{n}");
        assert_eq!(shape("sess:9f86d081884c7d65", D), "sess:{hex}");
        assert_eq!(
            shape("user/123e4567-e89b-12d3-a456-426614174000", D),
            "user/{uuid}"
        );
        assert_eq!(shape("42", D), "{n}");
    }

    #[test]
    fn quoting_escapes_control_bytes() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(cut("abcdef", 4), "abc…");
    }

    #[test]
    fn type_names_lose_their_package_paths() {
        assert_eq!(short_type_name("*math/big.Int"), "*big.Int");
        assert_eq!(
            short_type_name("map[string]*math/big.Int"),
            "map[string]*big.Int"
        );
        assert_eq!(short_type_name("[]uint8"), "[]uint8");
    }

    #[test]
    fn redaction_keeps_delimiters_and_classes_and_hides_every_field() {
        let r = Redactor::new(DEFAULT_DELIMITERS, 0);
        let a = r.key("acct:eu-west:00104729");
        let fields: Vec<&str> = a.split(':').collect();
        assert_eq!(fields.len(), 3, "{a}");
        assert!(
            fields[0].starts_with("{a}#") && fields[0].len() == 10,
            "{a}"
        );
        assert!(fields[1].starts_with("{w}#"), "{a}");
        assert!(fields[2].starts_with("{n}#"), "{a}");
        for secret in ["acct", "eu", "west", "00104729"] {
            assert!(!a.contains(secret), "{a}");
        }
        // The same field hashes the same within one report; other fields differ.
        assert_eq!(a, r.key("acct:eu-west:00104729"));
        assert_eq!(r.key("acct"), fields[0]);
        assert_ne!(r.key("acct:eu-east:00104729"), a);
        // Placeholders of a shape stay; a rendered struct keeps its punctuation.
        assert!(r.key("acct:{n}").ends_with(":{n}"));
        let s = r.text("{42, \"eu\"}", RENDER_PUNCTUATION);
        assert!(
            s.starts_with("{{n}#") && s.contains(", \"{a}#") && !s.contains("eu"),
            "{s}"
        );
        // Kept fields are shown verbatim.
        let k = Redactor::new(DEFAULT_DELIMITERS, 2).key("acct:eu-west:00104729");
        assert!(
            k.starts_with("acct:eu-west:{n}#") && !k.contains("00104729"),
            "{k}"
        );
    }
}
