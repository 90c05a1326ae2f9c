//! The `coreheap` command.

mod alloc;
mod cli;
mod tables;

#[global_allocator]
static ALLOC: alloc::HugePages = alloc::HugePages;

fn main() {
    std::process::exit(cli::main());
}
