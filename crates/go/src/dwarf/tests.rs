//! DWARF type parsing on sample executables: the layouts asserted here are facts of Go's
//! source (`math/big.Int`, `runtime.g`, `runtime.gobuf`) and of its linker's naming of map
//! types, not values read back from coreheap.

use super::*;
use crate::testing;

/// A type that must exist, by name.
fn named(d: &Dwarf, name: &str) -> TypeRef {
    d.type_named(name)
        .unwrap_or_else(|| panic!("no DWARF type {name}"))
}

/// The struct member of this name.
fn field<'a>(t: &'a TypeInfo, name: &str) -> &'a Field {
    let TypeKind::Struct(fields) = &t.kind else {
        panic!("{} is not a struct: {:?}", t.name, t.kind);
    };
    fields
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{} has no field {name}", t.name))
}

/// The name of the type a reference points at.
fn name_of(d: &Dwarf, r: Option<TypeRef>) -> String {
    d.info(r.expect("a type reference")).unwrap().name.clone()
}

/// `var balances = map[string]*big.Int{}` in samples/programs/ledger, read from the DWARF of
/// the sample's executable; `header` is the name Go's linker gives the map's header struct.
fn balances_is_a_map_of_big_ints(sample: &str, header: &str) {
    let p = testing::open(sample);
    let d = &p.dwarf;
    let var = d.variable("main.balances").expect("main.balances");
    let map = var.ty.expect("main.balances has a type");
    let info = d.info(map).unwrap();
    assert_eq!(info.name, "map[string]*math/big.Int", "{sample}");
    assert_eq!(info.go_kind, Some(go_kind::MAP), "{sample}");
    assert_eq!(
        d.type_named("map[string]*math/big.Int"),
        Some(map),
        "{sample}"
    );
    // A map value is one pointer to its header.
    assert_eq!(d.byte_size(map), 8, "{sample}");
    assert!(d.is_pointer_shaped(map), "{sample}");
    // resolve stops at a map: its typedef is what names it.
    assert_eq!(d.resolve(map).unwrap().0, map, "{sample}");

    // The key: a string header, data pointer then length.
    let key = d.info(info.go_key.expect("map key")).unwrap();
    assert_eq!(key.name, "string", "{sample}");
    assert_eq!(key.size, 16, "{sample}");
    assert_eq!(field(&key, "str").offset, 0, "{sample}");
    assert_eq!(field(&key, "len").offset, 8, "{sample}");

    // The element: *big.Int, a pointer to the 32-byte struct { neg bool; abs nat }.
    let elem_ref = info.go_elem.expect("map elem");
    let elem = d.info(elem_ref).unwrap();
    assert_eq!(elem.name, "*math/big.Int", "{sample}");
    assert_eq!(d.byte_size(elem_ref), 8, "{sample}");
    let TypeKind::Pointer(Some(target)) = elem.kind else {
        panic!("{sample}: *math/big.Int is {:?}", elem.kind);
    };
    // Go's linker points at a sizeless typedef of the named struct, emitted after it.
    let typedef = d.info(target).unwrap();
    assert_eq!(typedef.name, "math/big.Int", "{sample}");
    assert_eq!(typedef.size, 0, "{sample}");
    let (int_ref, int) = d.resolve(target).unwrap();
    assert!(
        matches!(typedef.kind, TypeKind::Typedef(Some(r)) if r == int_ref),
        "{sample}: {typedef:?}"
    );
    assert_eq!(Some(int_ref), d.type_named("math/big.Int"), "{sample}");
    assert_eq!(
        d.byte_size(target),
        32,
        "{sample}: size through the typedef"
    );
    assert_eq!(int.name, "math/big.Int", "{sample}");
    assert_eq!(int.size, 32, "{sample}");
    let TypeKind::Struct(fields) = &int.kind else {
        panic!("{sample}: math/big.Int is {:?}", int.kind);
    };
    let members: Vec<(&str, u64)> = fields.iter().map(|f| (&*f.name, f.offset)).collect();
    assert_eq!(members, [("neg", 0), ("abs", 8)], "{sample}");
    assert_eq!(name_of(d, field(&int, "neg").ty), "bool", "{sample}");
    let abs = field(&int, "abs").ty;
    assert_eq!(name_of(d, abs), "math/big.nat", "{sample}");
    assert_eq!(d.byte_size(abs.unwrap()), 24, "{sample}: a slice header");

    // The header struct the map points at, named by the map implementation.
    let h = d.map_header_type(map).expect("map header");
    assert_eq!(d.info(h).unwrap().name, header, "{sample}");
    assert_eq!(d.type_named(header), Some(h), "{sample}");
    // Not a map: no header.
    assert_eq!(d.map_header_type(int_ref), None, "{sample}");
    assert_eq!(d.map_header_type(target), None, "{sample}");
    assert_eq!(d.map_header_type(elem_ref), None, "{sample}");
}

#[test]
fn balances_type_go1_21_classic() {
    balances_is_a_map_of_big_ints("go1.21.13/ledger", "hash<string,*math/big.Int>");
}

#[test]
fn balances_type_go1_24_noswissmap() {
    balances_is_a_map_of_big_ints("go1.24.11-noswissmap/ledger", "hash<string,*math/big.Int>");
}

#[test]
fn balances_type_go1_26_swiss() {
    balances_is_a_map_of_big_ints("go1.26.6/ledger", "map<string,*math/big.Int>");
}

#[test]
fn balances_type_go1_26_arm64() {
    balances_is_a_map_of_big_ints("go1.26.6-arm64/ledger", "map<string,*math/big.Int>");
}

/// Dotted field paths add up their members' offsets, and sizes are found through typedefs.
fn paths_and_sizes(sample: &str) {
    let p = testing::open(sample);
    let d = &p.dwarf;
    // runtime.gobuf begins { sp, pc uintptr; g guintptr; ... } in every release read here.
    assert_eq!(d.offset("runtime.gobuf", "sp").unwrap(), 0, "{sample}");
    assert_eq!(d.offset("runtime.gobuf", "pc").unwrap(), 8, "{sample}");
    let sched = d.offset("runtime.g", "sched").unwrap();
    assert!(sched > 0, "{sample}: g.sched follows g.stack");
    assert_eq!(
        d.offset("runtime.g", "sched.sp").unwrap(),
        sched,
        "{sample}"
    );
    assert_eq!(
        d.offset("runtime.g", "sched.pc").unwrap(),
        sched + 8,
        "{sample}"
    );
    let (_, ty) = d.field_path("runtime.g", "sched.pc").unwrap();
    assert_eq!(name_of(d, ty), "uintptr", "{sample}");
    // g.stack is the first member, a runtime.stack { lo, hi uintptr }.
    assert_eq!(d.offset("runtime.g", "stack").unwrap(), 0, "{sample}");
    assert_eq!(d.offset("runtime.g", "stack.hi").unwrap(), 8, "{sample}");
    assert_eq!(d.field_size("runtime.g", "stack").unwrap(), 16, "{sample}");
    assert_eq!(
        d.field_size("runtime.g", "sched.sp").unwrap(),
        8,
        "{sample}"
    );
    // Two levels through a named slice type: big.Int.abs is a nat, a []Word header.
    assert_eq!(d.field_size("math/big.Int", "abs").unwrap(), 24, "{sample}");
    assert!(d.has_field("runtime.g", "sched.sp"), "{sample}");
    assert!(!d.has_field("runtime.g", "sched.nosuch"), "{sample}");
    assert!(!d.has_field("math/big.Int", "neg.deeper"), "{sample}");
    assert!(matches!(
        d.offset("math/big.Int", "nosuch"),
        Err(DwarfError::NoField { .. })
    ));
    assert!(matches!(
        d.offset("no/such.Type", "x"),
        Err(DwarfError::NoType(_))
    ));

    // Named types: nat is a slice of Word (24 bytes), Word a uint (8 bytes).
    let (_, nat) = d.resolve(named(d, "math/big.nat")).unwrap();
    assert_eq!(nat.go_kind, Some(go_kind::SLICE), "{sample}: reflect.Slice");
    assert_eq!(nat.size, 24, "{sample}");
    assert_eq!(name_of(d, nat.go_elem), "math/big.Word", "{sample}");
    assert_eq!(d.byte_size(named(d, "math/big.Word")), 8, "{sample}");
    // Member types are the sizeless typedefs; byte_size finds the struct's size through them.
    let abs_ref = d.field_path("math/big.Int", "abs").unwrap().1.unwrap();
    assert_eq!(d.info(abs_ref).unwrap().size, 0, "{sample}");
    assert_eq!(d.byte_size(abs_ref), 24, "{sample}");
    let sched_ref = d.field_path("runtime.g", "sched").unwrap().1.unwrap();
    assert_eq!(
        d.byte_size(sched_ref),
        d.size_of("runtime.gobuf").unwrap(),
        "{sample}"
    );
}

#[test]
fn field_paths_and_sizes_go1_21() {
    paths_and_sizes("go1.21.13/ledger");
}

#[test]
fn field_paths_and_sizes_go1_26() {
    paths_and_sizes("go1.26.6/ledger");
}
