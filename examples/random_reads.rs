//! The floor under any pass that follows every pointer: one read per edge, in no useful order,
//! from a table holding a `u32` per object, on every core. docs/performance.md compares it with
//! the plain pass over the heap and with coreheap's phases.
//!
//! `cargo run --release --example random_reads -- OBJECTS EDGES` (default: the 16 GiB Go 1.26
//! bench core's 285,452,681 objects and 380,517,068 edges). Prints the best of three passes.

use rayon::prelude::*;
use std::time::Instant;

// The tables get the allocator the coreheap binary runs with: huge pages, as its own tables
// have. The allocator is the binary's module, compiled in here as it is there.
#[path = "../src/alloc.rs"]
#[allow(dead_code)]
mod alloc;

#[global_allocator]
static ALLOC: alloc::HugePages = alloc::HugePages;

/// A well-spread 64-bit mix of `i` (splitmix64's finaliser).
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(Ok(default), |a| a.parse::<usize>())
    };
    let (Ok(objects), Ok(edges)) = (arg(1, 285_452_681), arg(2, 380_517_068)) else {
        eprintln!("usage: random_reads [OBJECTS [EDGES]]");
        std::process::exit(2);
    };
    if objects == 0 || objects > u32::MAX as usize {
        eprintln!("OBJECTS must be between 1 and {}", u32::MAX);
        std::process::exit(2);
    }
    let table: Vec<u32> = (0..objects as u64)
        .into_par_iter()
        .map(|i| mix(i) as u32)
        .collect();
    // The edges' targets, read in order as a pass reads its edge list.
    let targets: Vec<u32> = (0..edges as u64)
        .into_par_iter()
        .map(|i| (mix(i ^ 0x5555_5555) % objects as u64) as u32)
        .collect();
    let best = (0..3)
        .map(|_| {
            let t = Instant::now();
            let sum: u64 = targets
                .par_chunks(1 << 16)
                .map(|c| c.iter().map(|&v| u64::from(table[v as usize])).sum::<u64>())
                .sum();
            std::hint::black_box(sum);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "{edges} reads at random from a table of {objects} u32 ({:.2} GB): {best:.2} s (best of 3)",
        objects as f64 * 4e-9
    );
}
