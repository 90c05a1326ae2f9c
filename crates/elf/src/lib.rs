//! An ELF core and the executable that made it, read as one process address space.
//!
//! `input` opens files (decompressing what systemd-coredump compressed), `core` reads the
//! core's segments and notes, `exe` the executable's sections and build information, `memory`
//! joins them into the address space the later layers read, and `reader` checks every read of
//! bytes that came from either file. Nothing here knows about Go's runtime.

#![deny(missing_docs)]

pub mod core;
pub mod exe;
pub mod input;
pub mod memory;
pub mod reader;
