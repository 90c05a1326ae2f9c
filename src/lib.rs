//! coreheap: what is holding the memory in a Go core dump.
//!
//! Layers, each in its own module: `input` (files, compression) → `core` (ELF core) and
//! `exe` (the Go executable) → `memory` (the process's address space) → `dwarf` (types and
//! globals) → `process` (all of it, checked to belong together) → `runtime` (the Go runtime's
//! state) → `report` (what commands print). The library never prints.

pub mod alloc;
pub mod analysis;
pub mod core;
pub mod dwarf;
pub mod exe;
pub mod graph;
pub mod heap;
pub mod input;
pub mod maps;
pub mod memory;
pub mod process;
pub mod reader;
pub mod report;
pub mod roots;
pub mod runtime;
pub mod types;
