//! Go's `reflect.Kind` numbers, as the linker writes them in `DW_AT_go_kind`.

use std::ops::RangeInclusive;

/// `reflect.Bool`.
pub const BOOL: u8 = 1;
/// `reflect.Int`, the first signed integer kind.
pub const INT: u8 = 2;
/// `reflect.Int64`, the last signed integer kind.
pub const INT64: u8 = 6;
/// `reflect.Uint`, the first unsigned integer kind.
pub const UINT: u8 = 7;
/// `reflect.Uintptr`, the last unsigned integer kind.
pub const UINTPTR: u8 = 12;
/// `reflect.Float32`.
pub const FLOAT32: u8 = 13;
/// `reflect.Float64`.
pub const FLOAT64: u8 = 14;
/// `reflect.Chan`.
pub const CHAN: u8 = 18;
/// `reflect.Func`.
pub const FUNC: u8 = 19;
/// `reflect.Interface`.
pub const INTERFACE: u8 = 20;
/// `reflect.Map`.
pub const MAP: u8 = 21;
/// `reflect.Pointer`.
pub const POINTER: u8 = 22;
/// `reflect.Slice`.
pub const SLICE: u8 = 23;
/// `reflect.String`.
pub const STRING: u8 = 24;
/// `reflect.UnsafePointer`.
pub const UNSAFE_POINTER: u8 = 26;

/// The signed integer kinds (`Int` … `Int64`).
pub const SIGNED: RangeInclusive<u8> = INT..=INT64;
/// The unsigned integer kinds (`Uint` … `Uintptr`).
pub const UNSIGNED: RangeInclusive<u8> = UINT..=UINTPTR;

/// Whether a kind is an integer kind (`Int` … `Uintptr`).
pub fn is_integer(kind: u8) -> bool {
    (INT..=UINTPTR).contains(&kind)
}
