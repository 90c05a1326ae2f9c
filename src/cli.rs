//! Command-line interface: flags in, library calls, output and exit codes out.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use coreheap::process::{OpenError, OpenOptions, Process};
use coreheap::report::info::InfoReport;
use coreheap::runtime::RuntimeError;

/// Exit status: success.
const EXIT_OK: i32 = 0;
/// Exit status: coreheap failed for a reason of its own (a bug, an I/O error writing output).
const EXIT_INTERNAL: i32 = 1;
/// Exit status: the input cannot be used (bad core, wrong or missing binary, bad flags).
const EXIT_INPUT: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "coreheap",
    version,
    about = "What is holding the memory in a Go core dump",
    long_about = "coreheap reads an ELF core dump of a Go program (Go 1.21 to 1.27, amd64 or arm64) \
together with the program's executable, and reports what the Go heap holds.\n\n\
The core may be compressed with zstd, xz, gzip or lz4 (as systemd-coredump stores it). The \
executable must be the exact binary that crashed, with its DWARF; coreheap finds it from the \
path recorded in the core, or beside the core by build id, or takes it from --exe.",
    after_help = "Exit status: 0 success; 1 coreheap itself failed; 2 the input cannot be used \
(unreadable, truncated or non-Go core, missing or mismatched executable, bad flags).\n\n\
Example:\n  coreheap info core.zst --exe ./server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// What the core is: Go version, executable, threads, goroutines, runtime memory statistics.
    Info(InfoArgs),
}

/// Options for finding and reading a core and its executable.
#[derive(Args, Debug)]
struct CoreArgs {
    /// The core dump (ELF, or zstd/xz/gzip/lz4 compressed).
    core: PathBuf,
    /// The executable that crashed (default: found from the core).
    #[arg(long, value_name = "PATH")]
    exe: Option<PathBuf>,
    /// Read DWARF from this file instead of the executable (stripped binary + debug file).
    #[arg(long, value_name = "PATH")]
    debug_file: Option<PathBuf>,
    /// Look up paths recorded in the core under this directory (a copy of the crashed machine's files).
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// Where to put decompressed copies of compressed inputs (default: $TMPDIR or /tmp).
    #[arg(long, value_name = "DIR")]
    tmpdir: Option<PathBuf>,
    /// Read a core that was cut short; reads of the missing part count as damage.
    #[arg(long)]
    allow_truncated: bool,
    /// Use the executable even if its build id differs from the core's.
    #[arg(long)]
    force: bool,
}

impl CoreArgs {
    fn options(&self) -> OpenOptions {
        OpenOptions {
            exe: self.exe.clone(),
            debug_file: self.debug_file.clone(),
            sysroot: self.sysroot.clone(),
            tmpdir: self.tmpdir.clone(),
            allow_truncated: self.allow_truncated,
            force: self.force,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// A table for people.
    Table,
    /// JSON for programs (see docs/json.md).
    Json,
}

#[derive(Args, Debug)]
struct InfoArgs {
    #[command(flatten)]
    core: CoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Runs the command line and returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_INPUT } else { EXIT_OK };
        }
    };
    match run(cli) {
        Ok(()) => EXIT_OK,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) => {
            eprintln!("coreheap: error: {e:#}");
            exit_code(&e)
        }
    }
}

/// Output closed early (`coreheap … | head`): not an error for a Unix tool.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn exit_code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<OpenError>().is_some() || e.downcast_ref::<RuntimeError>().is_some() {
        EXIT_INPUT
    } else {
        EXIT_INTERNAL
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(a) => info(a),
    }
}

fn info(a: InfoArgs) -> anyhow::Result<()> {
    let p = Process::open(&a.core.core, &a.core.options())?;
    let report = InfoReport::gather(&p)?;
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => writeln!(out, "{}", report.to_json()?)?,
        Format::Table => {
            for w in &report.warnings {
                eprintln!("coreheap: warning: {w}");
            }
            writeln!(out, "{}", report.to_table())?
        }
    }
    Ok(())
}
