//! Command-line interface: flags in, library calls, output and exit codes out.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use std::io::IsTerminal;

use coreheap::analysis::{Analysis, Progress};

use crate::tables::TablePlace;
use coreheap::report::heapview::HeapView;
use coreheap::report::histogram::{HistogramReport, SortBy};
use coreheap::report::info::InfoReport;
use coreheap::report::maps::{GroupBy, MapsInput, MapsOptions, MapsReport};
use coreheap::report::path::{PathError, PathReport};
use coreheap::report::top::TopReport;
use coreheap_elf::memory::Addr;
use coreheap_go::maps::keys::Redactor;
use coreheap_go::process::{OpenError, OpenOptions, Process};
use coreheap_go::runtime::RuntimeError;
use coreheap_go::types::TypeScope;

/// Exit status: success.
const EXIT_OK: i32 = 0;
/// Exit status: coreheap failed for a reason of its own (a bug, an I/O error writing output).
const EXIT_INTERNAL: i32 = 1;
/// Exit status: the input cannot be used (bad core, wrong or missing binary, bad flags).
const EXIT_INPUT: i32 = 2;
/// Exit status: `diff --fail-over` found growth over the threshold.
const EXIT_GREW: i32 = 3;

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
(unreadable, truncated or non-Go core, missing or mismatched executable, bad flags); 3 `diff \
--fail-over` found growth over the threshold.\n\n\
Examples:\n  coreheap maps core.zst --exe ./server\n  coreheap maps core.zst --entries 5          (the 5 entries that retain the most, per map)\n  coreheap maps core.zst --redact --format markdown > report.md   (no key text leaves)\n  coreheap path core.zst 0xc000123450         (how an entry's value is held)\n  coreheap top core.zst\n  coreheap diff before.core after.core --exe ./server --fail-over 20%   (what grew; exit 3 over 20%)\n  coreheap info core.zst --format json\n  coreheap completions bash > ~/.local/share/bash-completion/completions/coreheap"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// What the core is: Go version, executable, threads, goroutines, runtime memory statistics.
    Info(InfoArgs),
    /// The largest retainers: objects that keep at least --threshold percent of the heap alive.
    Top(TopArgs),
    /// Objects per type: count, shallow bytes, retained bytes.
    Histogram(HistogramArgs),
    /// The shortest path from a root to the object holding ADDRESS, and its dominators.
    Path(PathArgs),
    /// Maps ranked by retained bytes, with their owner and the key groups that hold the bytes.
    Maps(MapsArgs),
    /// What grew between two cores of one service: maps and key groups, before and after.
    /// Exit status 3 when --fail-over is given and something grew more.
    Diff(DiffArgs),
    /// Print a shell completion script (e.g. `coreheap completions bash > /etc/bash_completion.d/coreheap`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page in roff (e.g. `coreheap man > coreheap.1; man ./coreheap.1`).
    Man,
    /// Read every heap byte once and report the speed (the floor for benchmarks).
    #[command(hide = true)]
    HeapScan(InfoArgs),
}

impl Command {
    /// Whether the command was asked for phase timings.
    fn timings(&self) -> bool {
        match self {
            Command::Completions { .. } | Command::Man => false,
            Command::Info(a) | Command::HeapScan(a) => a.out.timings,
            Command::Top(a) => a.out.timings,
            Command::Histogram(a) => a.out.timings,
            Command::Path(a) => a.out.timings,
            Command::Maps(a) => a.out.timings,
            Command::Diff(a) => a.out.timings,
        }
    }
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
    #[command(flatten)]
    read: ReadArgs,
}

/// How cores are read, whichever core it is.
#[derive(Args, Debug, Clone)]
struct ReadArgs {
    /// Look up paths recorded in the core under this directory (a copy of the crashed machine's files).
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// Where to put decompressed copies of compressed inputs (default: $TMPDIR or /tmp).
    #[arg(long, value_name = "DIR")]
    tmpdir: Option<PathBuf>,
    /// Most bytes a compressed input may decompress to (e.g. 64GiB). By default a compressed
    /// core stops at the size its ELF headers give, so a damaged stream cannot fill the disk.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    max_decompressed: Option<u64>,
    /// Keep the large per-object tables in unnamed files in DIR rather than in memory (slower;
    /// without this option it happens on its own, in the --tmpdir directory, when the tables
    /// would not fit in the memory available).
    #[arg(long, value_name = "DIR")]
    scratch_dir: Option<PathBuf>,
    /// Read a core that was cut short; reads of the missing part count as damage.
    #[arg(long)]
    allow_truncated: bool,
    /// Use the executable even if its build id differs from the core's.
    #[arg(long)]
    force: bool,
}

impl CoreArgs {
    fn options(&self) -> OpenOptions {
        let r = &self.read;
        OpenOptions {
            exe: self.exe.clone(),
            debug_file: self.debug_file.clone(),
            sysroot: r.sysroot.clone(),
            tmpdir: r.tmpdir.clone(),
            max_decompressed: r.max_decompressed,
            allow_truncated: r.allow_truncated,
            force: r.force,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    /// A table for people.
    Table,
    /// JSON for programs (see docs/json.md).
    Json,
    /// Markdown for a ticket.
    Markdown,
    /// A gzipped pprof profile for `go tool pprof` (maps, top, histogram, diff; with -o FILE).
    Pprof,
    /// One self-contained HTML page to attach to a ticket (maps, diff).
    Html,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GroupByArg {
    /// Key prefixes: a tree that opens where the bytes are, or cut at --depth.
    Prefix,
    /// Turn keys into patterns: numbers, hex runs and UUIDs become placeholders (docs/cli.md).
    Shape,
}

#[derive(Args, Debug)]
struct MapsArgs {
    #[command(flatten)]
    core: CoreArgs,
    #[command(flatten)]
    out: OutArgs,
    /// Maps to list (0: all).
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Leave out maps retaining fewer bytes: a number of bytes, or with a unit (512KiB, 1M = 1 MiB, 2GB = 2·10^9).
    #[arg(long, default_value = "0", value_name = "SIZE", value_parser = parse_size_arg)]
    min_bytes: u64,
    #[command(flatten)]
    grouping: GroupArgs,
    /// List the N entries that retain the most under each map and key group, with their key,
    /// value type and address (for `coreheap path`).
    #[arg(long, default_value_t = 0, value_name = "N")]
    entries: usize,
    /// List every map in the table: without it, maps under 0.1% of the reachable heap are
    /// folded into one line.
    #[arg(long)]
    all: bool,
    /// Maps inside other maps' entries are one row per outer map (`main.nested[*]`); with this,
    /// JSON also lists each of them under that row.
    #[arg(long)]
    nested: bool,
}

/// How a map's keys are grouped and shown.
#[derive(Args, Debug)]
struct GroupArgs {
    /// Key groups shown under each map (per level of the prefix tree).
    #[arg(long, default_value_t = 5, value_name = "N")]
    groups: usize,
    /// How to group keys.
    #[arg(long, value_enum, default_value_t = GroupByArg::Prefix)]
    group_by: GroupByArg,
    /// With --group-by prefix: cut every key before its N-th delimiter instead of the tree
    /// (keys with fewer delimiters go under their longest delimited prefix).
    #[arg(long, value_name = "N", value_parser = parse_depth)]
    depth: Option<usize>,
    /// Characters of a key shown.
    #[arg(long, default_value_t = 40, value_name = "N")]
    key_width: usize,
}

impl GroupArgs {
    /// The `maps` options these flags and the key flags set; the others at their defaults.
    fn maps_options(&self, keys: &KeyArgs) -> MapsOptions {
        MapsOptions {
            groups: self.groups,
            group_by: match self.group_by {
                GroupByArg::Prefix => GroupBy::Prefix,
                GroupByArg::Shape => GroupBy::Shape,
            },
            depth: self.depth,
            delimiters: keys.delimiters.clone(),
            key_width: self.key_width,
            redact: keys.redact,
            redact_keep: keys.redact_keep,
            ..MapsOptions::default()
        }
    }
}

/// How keys are split into fields, and whether they may leave the machine.
#[derive(Args, Debug)]
struct KeyArgs {
    /// Characters that separate key fields (`-` and `_` are not among them by default, so that
    /// `eu-west` and `user_42` stay one field).
    #[arg(long, default_value = coreheap_go::maps::keys::DEFAULT_DELIMITERS, value_name = "CHARS")]
    delimiters: String,
    /// Replace every field of every key, wherever keys appear (groups, entries, owners,
    /// findings, paths), by its class (letters, word, number, hex, uuid) and a short hash keyed
    /// for this run, so that the report can leave the machine: `eu-west` becomes `{w}#81d0aa`.
    #[arg(long)]
    redact: bool,
    /// With --redact: keep the first N fields of each key verbatim (for prefixes known not to
    /// be secret).
    #[arg(long, default_value_t = 0, value_name = "N", requires = "redact")]
    redact_keep: usize,
}

impl KeyArgs {
    /// The redactor the flags ask for, if any.
    fn redactor(&self) -> Option<Redactor> {
        self.redact
            .then(|| Redactor::new(&self.delimiters, self.redact_keep))
    }
}

#[derive(Args, Debug)]
struct DiffArgs {
    /// The earlier core (e.g. taken with gcore while the service ran).
    before: PathBuf,
    /// The later core (e.g. the one the OOM kill left).
    after: PathBuf,
    /// The executable of both cores, when they run the same build (default: found from each core).
    #[arg(long, value_name = "PATH")]
    exe: Option<PathBuf>,
    /// The executable of the earlier core.
    #[arg(long, value_name = "PATH", conflicts_with = "exe")]
    exe_before: Option<PathBuf>,
    /// The executable of the later core.
    #[arg(long, value_name = "PATH", conflicts_with = "exe")]
    exe_after: Option<PathBuf>,
    /// Read DWARF of both from this file instead of the executables.
    #[arg(long, value_name = "PATH")]
    debug_file: Option<PathBuf>,
    /// Read DWARF of the earlier core's executable from this file.
    #[arg(long, value_name = "PATH", conflicts_with = "debug_file")]
    debug_file_before: Option<PathBuf>,
    /// Read DWARF of the later core's executable from this file.
    #[arg(long, value_name = "PATH", conflicts_with = "debug_file")]
    debug_file_after: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    out: OutArgs,
    /// Maps to list, largest growth first (0: all).
    #[arg(long, default_value_t = 20)]
    top: usize,
    #[command(flatten)]
    grouping: GroupArgs,
    /// Exit with status 3 when the reachable heap or a map grew by more than SIZE (100MiB) or
    /// PCT of its size before (20%); a map that was not there before counts only against a
    /// SIZE. For a CI memory-growth gate.
    #[arg(long, value_name = "SIZE|PCT", value_parser = coreheap::report::diff::Threshold::parse)]
    fail_over: Option<coreheap::report::diff::Threshold>,
}

impl DiffArgs {
    /// How to read the earlier (`false`) or the later (`true`) core.
    fn side(&self, later: bool) -> CoreArgs {
        let pick = |both: &Option<PathBuf>, before: &Option<PathBuf>, after: &Option<PathBuf>| {
            both.clone()
                .or(if later { after.clone() } else { before.clone() })
        };
        CoreArgs {
            core: if later { &self.after } else { &self.before }.clone(),
            exe: pick(&self.exe, &self.exe_before, &self.exe_after),
            debug_file: pick(
                &self.debug_file,
                &self.debug_file_before,
                &self.debug_file_after,
            ),
            read: self.read.clone(),
        }
    }
}

#[derive(Args, Debug)]
struct InfoArgs {
    #[command(flatten)]
    core: CoreArgs,
    #[command(flatten)]
    out: OutArgs,
}

/// Output options shared by every command.
#[derive(Args, Debug)]
struct OutArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Width of tables in columns (default: the terminal's, else $COLUMNS, else 100).
    #[arg(long, value_name = "COLUMNS", value_parser = clap::value_parser!(u16).range(40..))]
    width: Option<u16>,
    #[command(flatten)]
    keys: KeyArgs,
    /// Print each analysis phase's wall time and peak memory on stderr.
    #[arg(long)]
    timings: bool,
}

#[derive(Args, Debug)]
struct TopArgs {
    #[command(flatten)]
    core: CoreArgs,
    #[command(flatten)]
    out: OutArgs,
    /// List objects retaining at least this percent of the reachable heap.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
    threshold: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SortArg {
    /// By object count.
    Count,
    /// By shallow bytes.
    Shallow,
    /// By retained bytes.
    Retained,
}

#[derive(Args, Debug)]
struct HistogramArgs {
    #[command(flatten)]
    core: CoreArgs,
    #[command(flatten)]
    out: OutArgs,
    /// Sort order.
    #[arg(long, value_enum, default_value_t = SortArg::Retained)]
    sort: SortArg,
    /// Lines in the table (0: all); JSON always has all.
    #[arg(long, default_value_t = 30)]
    top: usize,
}

#[derive(Args, Debug)]
struct PathArgs {
    #[command(flatten)]
    core: CoreArgs,
    /// An address inside a heap object (hex, with or without 0x).
    address: String,
    #[command(flatten)]
    out: OutArgs,
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
    let timings = cli.command.timings();
    // The peak of anonymous memory for --timings, sampled.
    crate::alloc::watch_peak();
    let started = std::time::Instant::now();
    let result = run(cli);
    if timings {
        eprintln!(
            "{:<12} {:>10.3} s",
            "total",
            started.elapsed().as_secs_f64()
        );
        eprintln!(
            "peak anonymous {} (sampled every 10 ms over the whole command)",
            coreheap::report::human_bytes(crate::alloc::anonymous_peak_bytes())
        );
    }
    match result {
        Ok(()) => EXIT_OK,
        Err(e) if is_broken_pipe(&e) => EXIT_OK,
        Err(e) if e.downcast_ref::<Grew>().is_some() => {
            eprintln!("coreheap: {e}");
            EXIT_GREW
        }
        Err(e) => {
            eprintln!("coreheap: error: {}", one_line(&e));
            exit_code(&e)
        }
    }
}

/// An error and its causes on one line, each cause once: a cause whose text the line already
/// holds (an error that prints its source, then the source itself) is left out.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Output closed early (`coreheap … | head`): not an error for a Unix tool.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn exit_code(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<OpenError>().is_some()
        || e.downcast_ref::<RuntimeError>().is_some()
        || e.downcast_ref::<PathError>().is_some()
        || e.downcast_ref::<BadAddress>().is_some()
        || e.downcast_ref::<BadOutput>().is_some()
        || e.downcast_ref::<crate::alloc::ScratchError>().is_some()
    {
        EXIT_INPUT
    } else {
        EXIT_INTERNAL
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(a) => info(a),
        Command::Top(a) => top(a),
        Command::Histogram(a) => histogram(a),
        Command::Path(a) => path(a),
        Command::Maps(a) => maps(a),
        Command::Diff(a) => diff(a),
        Command::HeapScan(a) => heap_scan(a),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "coreheap", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
            Ok(())
        }
    }
}

fn heap_scan(a: InfoArgs) -> anyhow::Result<()> {
    let p = Process::open(&a.core.core, &a.core.options())?;
    let rt = coreheap_go::runtime::Runtime::new(&p);
    let heap = coreheap_go::heap::Heap::read(&rt)?;
    let t = std::time::Instant::now();
    let (bytes, sum) = heap.scan_bytes(&p.mem);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{bytes} bytes in {secs:.3} s ({:.0} MB/s, checksum {sum:x})",
        bytes as f64 / secs.max(1e-9) / 1e6
    );
    Ok(())
}

/// A size flag's value: bytes, or a number with a unit (see [`coreheap::report::parse_size`]).
fn parse_size_arg(s: &str) -> Result<u64, String> {
    coreheap::report::parse_size(s)
}

/// `--depth`: at least one delimiter is kept.
fn parse_depth(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{s:?} is not a depth: give a whole number of delimiters, 1 or more"
        )),
    }
}

fn maps(a: MapsArgs) -> anyhow::Result<()> {
    check_output(&a.out, true, true)?;
    let profile = a.out.format == Format::Pprof;
    let page = a.out.format == Format::Html;
    let opts = MapsOptions {
        // A profile holds every map, so that its total is the heap's.
        top: if profile { 0 } else { a.top },
        min_bytes: a.min_bytes,
        nested: a.nested,
        // A page lists each map's largest entries.
        entries: if page { a.entries.max(10) } else { a.entries },
        all: a.all,
        ..a.grouping.maps_options(&a.out.keys)
    };
    with_view(&a.core, &a.out, TypeScope::TowardMaps, |p, view| {
        let counts = profile.then(|| view.subtree_counts());
        let input = MapsInput {
            objects: counts.as_deref(),
            ..MapsInput::of(p, view)
        };
        let report = MapsReport::gather(&input, &opts);
        render(
            &a.out,
            || report.to_json(),
            |w| report.to_table(w),
            |c| report.to_markdown(c),
            |c| coreheap::report::pprof::maps(&report, c),
            || coreheap::report::html::maps(&report, &page_title("maps", &[&a.core.core])),
        )
    })
}

/// `diff --fail-over` found growth over the threshold.
#[derive(Debug, thiserror::Error)]
#[error("growth over --fail-over {threshold}: {}", .exceeded.join("; "))]
struct Grew {
    threshold: String,
    exceeded: Vec<String>,
}

fn diff(a: DiffArgs) -> anyhow::Result<()> {
    use coreheap::report::diff::{DiffOptions, DiffReport};
    use coreheap::report::maps::{KeyGroup, MapsInput, MapsReport};
    check_output(&a.out, true, true)?;
    let profile = a.out.format == Format::Pprof;
    let keys = &a.out.keys;
    let mut opts = MapsOptions {
        top: 0,
        ..a.grouping.maps_options(keys)
    };
    // One redactor for both cores, so that a key reads the same in both.
    let redactor = coreheap_go::maps::keys::Redactor::new(&keys.delimiters, keys.redact_keep);
    // One core at a time, the later first: its key groups are the shape the earlier core's
    // keys are grouped in.
    let report = |side: &CoreArgs, opts: &MapsOptions, which: &str| -> anyhow::Result<MapsReport> {
        let (p, analysis) = analyse_side(side, &a.out, TypeScope::TowardMaps, which)?;
        let view = HeapView::new(&analysis);
        let counts = profile.then(|| view.subtree_counts());
        let input = MapsInput {
            objects: counts.as_deref(),
            ..MapsInput::of(&p, &view)
        };
        Ok(MapsReport::gather_with(&input, opts, &redactor))
    };
    let (before, after) = (a.side(false), a.side(true));
    let later = report(&after, &opts, "after")?;
    let guides = (later.maps.iter())
        .map(|m| (m.owner.clone(), KeyGroup::guide(&m.groups)))
        .collect();
    opts.guides = Some(std::sync::Arc::new(guides));
    let earlier = report(&before, &opts, "before")?;
    let path = |c: &CoreArgs| c.core.display().to_string();
    let report = DiffReport::compare(
        (path(&before), earlier),
        (path(&after), later),
        &DiffOptions {
            top: if profile { 0 } else { a.top },
            groups: a.grouping.groups,
            fail_over: a.fail_over,
        },
    );
    print_out(
        &a.out,
        &render(
            &a.out,
            || report.to_json(),
            |w| report.to_table(w),
            |c| report.to_markdown(c),
            |c| coreheap::report::pprof::diff(&report, c),
            || {
                let title = page_title("diff", &[&before.core, &after.core]);
                coreheap::report::html::diff(&report, &title)
            },
        )?,
    )?;
    match &report.fail_over {
        Some(f) if report.failed() => Err(Grew {
            threshold: f.threshold.clone(),
            exceeded: f.exceeded.clone(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The command line as typed, quoted where a word holds a space (for Markdown reports).
fn command_line() -> String {
    std::env::args()
        .map(|x| if x.contains(' ') { format!("{x:?}") } else { x })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Columns a table may take: --width, else the terminal's, else $COLUMNS, else 100.
fn table_width(asked: Option<u16>) -> u16 {
    asked
        .or_else(|| {
            std::io::stdout()
                .is_terminal()
                .then(|| comfy_table::Table::new().width())
                .flatten()
        })
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .unwrap_or(100)
        .max(40)
}

/// Progress on stderr, drawn only when stderr is a terminal: a bar with percentage, rate and
/// time left for phases that know their size, else a spinner with the time spent.
struct Bars {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    enabled: bool,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            bar: std::sync::Mutex::new(None),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// The bar being drawn, if any.
    fn current(&self) -> std::sync::MutexGuard<'_, Option<indicatif::ProgressBar>> {
        self.bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Progress for Bars {
    fn start(&self, phase: &'static str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let (template, b) = match total {
            Some(n) => (
                "{msg} [{bar:30}] {percent}% {human_pos}/{human_len} {per_sec} ETA {eta}",
                indicatif::ProgressBar::new(n),
            ),
            None => (
                "{spinner} {msg} {elapsed}",
                indicatif::ProgressBar::new_spinner(),
            ),
        };
        let style = indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
            .progress_chars("=> ");
        let b = b.with_style(style).with_message(phase);
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Some(old) = self.current().replace(b) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = self.current().as_ref() {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.current().take() {
            b.finish_and_clear();
        }
    }
}

/// Decompression shows a bar (share of the compressed file read, rate, time left) once it has
/// taken a second, so that short ones stay silent.
impl coreheap_elf::input::ReadProgress for Bars {
    fn start(&self, path: &std::path::Path, total: u64) {
        if !self.enabled {
            return;
        }
        let name = path
            .file_name()
            .unwrap_or(path.as_os_str())
            .to_string_lossy();
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {percent}% {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        let b = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::hidden(),
        )
        .with_style(style)
        .with_message(format!("decompressing {name}"));
        *self.current() = Some(b);
    }

    fn advance(&self, done: u64) {
        if let Some(b) = self.current().as_ref() {
            b.set_position(done);
            if b.is_hidden() && b.elapsed() >= std::time::Duration::from_secs(1) {
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
        }
    }

    fn finish(&self) {
        Progress::finish(self);
    }
}

/// Opens the core and runs the heap analysis, printing timings when asked.
fn analyse(
    core: &CoreArgs,
    out: &OutArgs,
    scope: TypeScope,
) -> anyhow::Result<(Process, Analysis)> {
    analyse_side(core, out, scope, "")
}

/// [`analyse`] for one of several cores, named `which` in warnings and timings.
fn analyse_side(
    core: &CoreArgs,
    out: &OutArgs,
    scope: TypeScope,
    which: &str,
) -> anyhow::Result<(Process, Analysis)> {
    let which = if which.is_empty() {
        String::new()
    } else {
        format!("{which}: ")
    };
    let tables = match &core.read.scratch_dir {
        Some(dir) => TablePlace::scratch(dir)?,
        None => {
            TablePlace::memory_or((core.read.tmpdir.clone()).unwrap_or_else(std::env::temp_dir))
        }
    };
    let t = std::time::Instant::now();
    let bars = Bars::new();
    let p = Process::open_with_progress(&core.core, &core.options(), &bars)?;
    let open = t.elapsed();
    let a = Analysis::run_scoped(&p, &bars, &tables, scope).map_err(|e| e.in_core(&p.core))?;
    // Every report repeats the warnings; on a terminal, once is enough.
    let shown = std::io::stdout().is_terminal()
        && matches!(out.format, Format::Table | Format::Markdown)
        && out.output.is_none();
    if !shown {
        for w in &a.warnings {
            eprintln!("coreheap: warning: {which}{w}");
        }
    }
    if out.timings {
        if !which.is_empty() {
            eprintln!("{which}{}", core.core.display());
        }
        eprintln!("{:<12} {:>10.3} s", "open", open.as_secs_f64());
        for ph in &a.timings {
            eprint_phase(ph);
        }
        let nodes = a.graph.graph.node_count().max(1) as f64;
        eprintln!(
            "tables       {} for {} objects and {} edges ({:.1} bytes per graph node)",
            coreheap::report::human_bytes(a.table_bytes()),
            a.objects.len(),
            a.graph.graph.edge_count(),
            a.table_bytes() as f64 / nodes
        );
        eprintln!(
            "large blocks {} of fresh pages",
            coreheap::report::human_bytes(crate::alloc::fresh_block_bytes())
        );
        if crate::alloc::failed_calls() > 0 {
            eprintln!(
                "allocator    {} system calls failed (memory left mapped)",
                crate::alloc::failed_calls()
            );
        }
        if crate::alloc::scratch_in_use() {
            eprintln!(
                "scratch      {} at most in scratch files",
                coreheap::report::human_bytes(crate::alloc::scratch_peak_bytes())
            );
        }
    }
    Ok((p, a))
}

/// A report in the format asked for. `profile` writes the pprof profile, given comments to
/// put in it; `page` the HTML page.
fn render(
    out: &OutArgs,
    json: impl FnOnce() -> serde_json::Result<String>,
    table: impl FnOnce(u16) -> String,
    markdown: impl FnOnce(&str) -> String,
    profile: impl FnOnce(&[String]) -> std::io::Result<Vec<u8>>,
    page: impl FnOnce() -> serde_json::Result<String>,
) -> anyhow::Result<Vec<u8>> {
    Ok(match out.format {
        Format::Html => page()?.into_bytes(),
        Format::Json => format!("{}\n", json()?).into_bytes(),
        Format::Table => format!("{}\n", table(table_width(out.width))).into_bytes(),
        Format::Markdown => markdown(&command_line()).into_bytes(),
        Format::Pprof => profile(&[
            format!("coreheap {}", env!("CARGO_PKG_VERSION")),
            command_line(),
        ])?,
    })
}

/// A page's title: the command and the cores, each by its directory and file name.
fn page_title(command: &str, cores: &[&std::path::Path]) -> String {
    let names: Vec<String> = (cores.iter())
        .map(|c| {
            let parts: Vec<_> = c.components().collect();
            let tail = &parts[parts.len().saturating_sub(2)..];
            tail.iter().collect::<PathBuf>().display().to_string()
        })
        .collect();
    format!("coreheap {command} · {}", names.join(" → "))
}

/// For commands that write no profile.
fn no_profile(_: &[String]) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::other("this command writes no profile"))
}

/// For commands that write no page.
fn no_page() -> serde_json::Result<String> {
    Err(serde::ser::Error::custom("this command writes no page"))
}

/// An output the command cannot write where it was asked to.
#[derive(Debug, thiserror::Error)]
enum BadOutput {
    #[error("--format pprof is for maps, top, histogram and diff")]
    NoProfile,
    #[error("--format html is for maps and diff")]
    NoPage,
    #[error("a pprof profile is binary: give -o FILE, or redirect stdout to a file")]
    BinaryToTerminal,
}

/// Refuses, before any work, an output the command cannot give: a profile or a page from a
/// command that has none (`profile`, `page`: it has one), a profile on a terminal.
fn check_output(out: &OutArgs, profile: bool, page: bool) -> anyhow::Result<()> {
    if out.format == Format::Html && !page {
        return Err(BadOutput::NoPage.into());
    }
    if out.format == Format::Pprof {
        if !profile {
            return Err(BadOutput::NoProfile.into());
        }
        if out.output.is_none() && std::io::stdout().is_terminal() {
            return Err(BadOutput::BinaryToTerminal.into());
        }
    }
    Ok(())
}

/// Writes a rendered report to `-o FILE`, else to stdout.
fn print_out(out: &OutArgs, report: &[u8]) -> anyhow::Result<()> {
    if let Some(path) = &out.output {
        return std::fs::write(path, report)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()));
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report)?;
    stdout.flush()?;
    Ok(())
}

/// Opens, analyses and types the heap, then hands a view of it to `f`.
/// A `--timings` line of one phase.
fn eprint_phase(ph: &coreheap::analysis::PhaseTiming) {
    eprintln!(
        "{:<12} {:>10.3} s   peak RSS {:>10}   anonymous {:>10}",
        ph.phase,
        ph.wall.as_secs_f64(),
        coreheap::report::human_bytes(ph.peak_rss_bytes),
        coreheap::report::human_bytes(ph.anon_rss_bytes)
    );
}

fn with_view(
    core: &CoreArgs,
    out: &OutArgs,
    scope: TypeScope,
    f: impl FnOnce(&Process, &HeapView) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let (p, analysis) = analyse(core, out, scope)?;
    report_on(p, analysis, out, std::time::Duration::ZERO, f)
}

/// [`with_view`] for a report that names only some objects: the heap is typed toward maps,
/// then `choose` picks what the report shows and the paths from roots to it (graph nodes),
/// and the objects along those paths are typed before `f` reports on them.
fn with_paths_typed<T>(
    core: &CoreArgs,
    out: &OutArgs,
    choose: impl FnOnce(&HeapView) -> (T, Vec<Vec<u32>>),
    f: impl FnOnce(&Process, &HeapView, T) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let (p, mut analysis) = analyse(core, out, TypeScope::TowardMaps)?;
    let t = std::time::Instant::now();
    let (chosen, paths) = choose(&HeapView::new(&analysis));
    let chosen_in = t.elapsed();
    analysis
        .type_paths(&p, &paths)
        .map_err(|e| e.in_core(&p.core))?;
    if out.timings {
        if let Some(ph) = analysis.timings.last() {
            eprint_phase(ph);
        }
    }
    report_on(p, analysis, out, chosen_in, |p, view| f(p, view, chosen))
}

/// Builds a report on an analysis and writes it; `before`: report time already spent.
fn report_on(
    p: Process,
    analysis: Analysis,
    out: &OutArgs,
    before: std::time::Duration,
    f: impl FnOnce(&Process, &HeapView) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<()> {
    let bars = Bars::new();
    bars.start("building the report", None);
    let t = std::time::Instant::now();
    let report = f(&p, &HeapView::new(&analysis));
    let built = before + t.elapsed();
    bars.finish();
    let t = std::time::Instant::now();
    print_out(out, &report?)?;
    let written = t.elapsed();
    let t = std::time::Instant::now();
    drop(analysis);
    drop(p);
    if out.timings {
        for (what, time) in [
            ("report", built),
            ("output", written),
            ("free", t.elapsed()),
        ] {
            eprintln!("{what:<12} {:>10.3} s", time.as_secs_f64());
        }
    }
    Ok(())
}

fn info(a: InfoArgs) -> anyhow::Result<()> {
    check_output(&a.out, false, false)?;
    // Info reports totals, not types.
    let (p, analysis) = analyse(&a.core, &a.out, TypeScope::TowardMaps)?;
    let mut report = InfoReport::gather(&p, Some(&analysis)).map_err(|e| e.in_core(&p.core))?;
    if let Some(r) = a.out.keys.redactor() {
        report.redact(&r);
    }
    // The analysis' own warnings are on stderr already (or under the table, on a terminal).
    if matches!(a.out.format, Format::Table) && !std::io::stdout().is_terminal() {
        for w in (report.warnings.iter()).filter(|w| !analysis.warnings.contains(w)) {
            eprintln!("coreheap: warning: {w}");
        }
    }
    print_out(
        &a.out,
        &render(
            &a.out,
            || report.to_json(),
            |w| report.to_table(w),
            |c| report.to_markdown(c),
            no_profile,
            no_page,
        )?,
    )
}

fn top(a: TopArgs) -> anyhow::Result<()> {
    check_output(&a.out, true, false)?;
    let redactor = a.out.keys.redactor();
    let choose = |view: &HeapView| {
        let chosen = TopReport::choose(view, a.threshold);
        let paths = chosen.paths().to_vec();
        (chosen, paths)
    };
    with_paths_typed(&a.core, &a.out, choose, |p, view, chosen| {
        let namer = namer(p, view, redactor.as_ref());
        let report = TopReport::gather(&namer, p.exe.buildinfo.release(), a.threshold, chosen);
        render(
            &a.out,
            || report.to_json(),
            |w| report.to_table(w),
            |c| report.to_markdown(c),
            |c| coreheap::report::pprof::top(&report, c),
            no_page,
        )
    })
}

/// Names paths in the heap, keys redacted when asked.
fn namer<'a>(
    p: &'a Process,
    view: &'a HeapView<'a>,
    redactor: Option<&'a Redactor>,
) -> coreheap::report::heapview::Namer<'a> {
    coreheap::report::heapview::Namer::new(view, &p.dwarf, &p.mem)
        .with_code(&p.symbols, p.bias)
        .with_redactor(redactor)
}

fn histogram(a: HistogramArgs) -> anyhow::Result<()> {
    let sort = match a.sort {
        SortArg::Count => SortBy::Count,
        SortArg::Shallow => SortBy::Shallow,
        SortArg::Retained => SortBy::Retained,
    };
    check_output(&a.out, true, false)?;
    with_view(&a.core, &a.out, TypeScope::All, |p, view| {
        let report = HistogramReport::gather(view, p.exe.buildinfo.release(), sort);
        render(
            &a.out,
            || report.to_json(),
            |w| report.to_table(a.top, w),
            |c| report.to_markdown(a.top, c),
            |c| coreheap::report::pprof::histogram(&report, c),
            no_page,
        )
    })
}

/// An ADDRESS argument that is not a hexadecimal number.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an address: give it in hexadecimal, e.g. 0xc000123450")]
struct BadAddress(String);

fn path(a: PathArgs) -> anyhow::Result<()> {
    let digits = a.address.trim_start_matches("0x").trim_start_matches("0X");
    let addr = u64::from_str_radix(digits, 16).map_err(|_| BadAddress(a.address.clone()))?;
    check_output(&a.out, false, false)?;
    let redactor = a.out.keys.redactor();
    let choose = |view: &HeapView| {
        let chosen = PathReport::choose(view, Addr(addr));
        let paths = match &chosen {
            Ok(c) => vec![c.nodes.clone()],
            Err(_) => Vec::new(),
        };
        (chosen, paths)
    };
    with_paths_typed(&a.core, &a.out, choose, |p, view, chosen| {
        let namer = namer(p, view, redactor.as_ref());
        let report = PathReport::gather(&namer, chosen?)?;
        render(
            &a.out,
            || report.to_json(),
            |_| report.to_table(),
            |c| report.to_markdown(c),
            no_profile,
            no_page,
        )
    })
}
