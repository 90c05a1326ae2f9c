//! The `coreheap` command.

mod cli;

#[global_allocator]
static ALLOC: coreheap::alloc::HugePages = coreheap::alloc::HugePages;

fn main() {
    std::process::exit(cli::main());
}
