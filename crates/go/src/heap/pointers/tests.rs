//! Pointer bits of objects whose layout Go's source fixes, on the three generations of heap
//! bitmaps: the arena bitmap (Go 1.21), span-end heap bits and malloc headers (1.22+), and
//! both with Swiss maps' groups (1.26). The objects are main.balances' entries in the ledger
//! sample: its `*big.Int` values (`struct { neg bool; abs nat }`, a nat being a `[]Word`:
//! words neg, abs.ptr, abs.len, abs.cap: only word 1 is a pointer), their `[]Word` magnitudes
//! and the keys' bytes (no pointers), and the map's arrays of key/value slots.

use crate::heap::ObjId;
use crate::memory::Addr;
use crate::testing::{self, Phases};

/// The pointer words PointerBits finds in an object, as offsets from the object's slot.
fn pointer_offsets(p: &crate::process::Process, ph: &Phases, id: ObjId) -> Vec<u64> {
    let span = ph.objects.span(id);
    let slot = ph.objects.slot_in(span, id);
    let mut out = Vec::new();
    ph.bits
        .pointer_words(&p.mem, &ph.heap, span, slot, &mut out)
        .unwrap();
    let base = ph.objects.addr_in(span, id);
    out.iter().map(|a| a.0 - base.0).collect()
}

/// Every `*big.Int` of the map has exactly its slice's data pointer as a pointer word; the
/// magnitude it points at and every key string have none.
fn big_ints_have_one_pointer_word(sample: &str) {
    let entries = testing::uint(&testing::truth_map(sample, "main.balances"), "entries");
    let p = testing::open(sample);
    let ph = Phases::run(&p);
    let ints = ph.typed("math/big.Int");
    assert_eq!(ints.len() as u64, entries, "{sample}");
    let mut magnitudes = Vec::new();
    for &id in &ints {
        let at = ph.objects.addr(id);
        // It is a big.Int by its memory, whatever the bits say: abs points at a live object
        // holding cap words, and 0 < len <= cap <= 24 (the program's largest magnitude).
        let word = |i: u64| p.mem.u64(at.offset(8 * i)).unwrap();
        let (data, len, cap) = (word(1), word(2), word(3));
        assert!(word(0) <= 1, "{sample}: neg of the Int at {at}");
        assert!(0 < len && len <= cap && cap <= 24, "{sample}: Int at {at}");
        let nat = ph
            .objects
            .find(&ph.index, Addr(data))
            .unwrap_or_else(|| panic!("{sample}: abs of {at} points at no live object"));
        assert_eq!(ph.objects.addr(nat).0, data, "{sample}: abs of {at}");
        assert!(8 * cap <= ph.objects.size(nat), "{sample}: abs of {at}");
        magnitudes.push(nat);

        assert_eq!(ph.objects.size(id), 32, "{sample}: Int at {at}");
        assert_eq!(
            pointer_offsets(&p, &ph, id),
            [8],
            "{sample}: pointer words of the Int at {at}"
        );
    }
    for nat in magnitudes {
        assert_eq!(pointer_offsets(&p, &ph, nat), [0u64; 0], "{sample}: []Word");
    }
    let keys = ph.typed("string data");
    assert!(keys.len() as u64 >= entries, "{sample}: key strings");
    for key in keys {
        assert_eq!(pointer_offsets(&p, &ph, key), [0u64; 0], "{sample}: string");
    }
}

#[test]
fn big_int_pointer_bits_go1_21_arena_bitmap() {
    big_ints_have_one_pointer_word("go1.21.13/ledger");
}

#[test]
fn big_int_pointer_bits_go1_22_heap_bits() {
    big_ints_have_one_pointer_word("go1.22.10/ledger");
}

#[test]
fn big_int_pointer_bits_go1_26() {
    big_ints_have_one_pointer_word("go1.26.6/ledger");
}

/// The map's slot arrays hold `elem`-byte elements whose pointer words are at `offsets`
/// (Go's layouts of a classic bucket or a Swiss group for map[string]*big.Int); PointerBits
/// finds exactly those in every whole element of each array, after the malloc header of
/// `header` bytes (8 for an object of a small size class above 512 bytes from Go 1.22, else 0).
fn slot_arrays_have_their_layouts_pointers(
    sample: &str,
    array: &str,
    (elem, header): (u64, u64),
    offsets: &[u64],
) {
    let p = testing::open(sample);
    let ph = Phases::run(&p);
    let arrays = ph.typed(array);
    assert!(!arrays.is_empty(), "{sample}: no {array}");
    for id in arrays {
        assert_eq!(ph.types.value_size(id), Some(elem), "{sample}: {array}");
        let span = ph.objects.span(id);
        let (start, len) = ph.objects.value_in(span, id);
        assert_eq!(
            start.0 - ph.objects.addr_in(span, id).0,
            header,
            "{sample}: {array} at {start}: malloc header"
        );
        let want: Vec<u64> = (0..len / elem)
            .flat_map(|e| offsets.iter().map(move |o| header + e * elem + o))
            .collect();
        assert_eq!(
            pointer_offsets(&p, &ph, id),
            want,
            "{sample}: {array} at {start}, {len} bytes"
        );
    }
}

/// `bucket<string,*big.Int>`: tophash [8]uint8, keys [8]string, elems [8]*big.Int, overflow.
fn bucket_pointers() -> Vec<u64> {
    let keys = (0..8).map(|i| 8 + 16 * i);
    let elems = (0..8).map(|i| 8 + 128 + 8 * i);
    keys.chain(elems).chain([8 + 128 + 64]).collect()
}

/// `group[string]*big.Int`: ctrl uint64, then 8 slots of { key string; elem *big.Int }.
fn group_pointers() -> Vec<u64> {
    (0..8).flat_map(|i| [8 + 24 * i, 8 + 24 * i + 16]).collect()
}

#[test]
fn bucket_pointer_bits_go1_21_arena_bitmap() {
    slot_arrays_have_their_layouts_pointers(
        "go1.21.13/ledger",
        "bucket<string,*math/big.Int>",
        (208, 0),
        &bucket_pointers(),
    );
}

#[test]
fn bucket_pointer_bits_go1_22_large_type_of_span() {
    slot_arrays_have_their_layouts_pointers(
        "go1.22.10/ledger",
        "bucket<string,*math/big.Int>",
        (208, 0),
        &bucket_pointers(),
    );
}

#[test]
fn group_pointer_bits_go1_26_malloc_headers() {
    slot_arrays_have_their_layouts_pointers(
        "go1.26.6/ledger",
        "noalg.map.group[string]*math/big.Int",
        (200, 8),
        &group_pointers(),
    );
}
