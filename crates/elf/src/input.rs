//! Opening input files: recognising compression and mapping the bytes into memory.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use thiserror::Error;

/// Compression formats recognised by their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Zstandard, systemd-coredump's default.
    Zstd,
    /// xz (LZMA2).
    Xz,
    /// gzip (deflate).
    Gzip,
    /// LZ4 frame format.
    Lz4,
}

impl Compression {
    /// Short lowercase name of the format.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
        }
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// An ELF file.
    Elf,
    /// A compressed stream coreheap can read.
    Compressed(Compression),
    /// A compressed or archive format coreheap cannot read.
    Unsupported(&'static str),
    /// Nothing recognisable.
    Unknown,
    /// The file is empty.
    Empty,
}

/// Classifies a file by its leading bytes.
pub fn sniff(head: &[u8]) -> Magic {
    if head.is_empty() {
        return Magic::Empty;
    }
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"\x7fELF") {
        Magic::Elf
    } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Magic::Compressed(Compression::Zstd)
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Magic::Compressed(Compression::Xz)
    } else if starts(&[0x1f, 0x8b]) {
        Magic::Compressed(Compression::Gzip)
    } else if starts(&[0x04, 0x22, 0x4d, 0x18]) {
        Magic::Compressed(Compression::Lz4)
    } else if starts(b"BZh") {
        Magic::Unsupported("bzip2")
    } else if starts(&[0x5d, 0x00, 0x00]) {
        Magic::Unsupported("lzma (legacy .lzma)")
    } else if starts(b"PK\x03\x04") {
        Magic::Unsupported("zip")
    } else if starts(b"7z\xbc\xaf\x27\x1c") {
        Magic::Unsupported("7-zip")
    } else if starts(&[0x89, b'L', b'Z', b'O']) {
        Magic::Unsupported("lzop")
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Magic::Unsupported("tar")
    } else {
        Magic::Unknown
    }
}

/// Errors while opening an input file.
#[derive(Debug, Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Decompression failed part way.
    #[error("{path} looks {format}-compressed but does not decompress: {source}; the file is cut short or damaged. If it is a core, `{format} -dc {path} > core` keeps what decompresses, which --allow-truncated reads")]
    Decompress {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The path names something other than a regular file (a FIFO, a device, a directory).
    #[error("{path} is {kind}, not a regular file: coreheap reads cores and executables from files; {fix}")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
        /// What to do.
        fix: String,
    },
    /// A stream decompressed past the size its ELF headers give, or past the limit set.
    #[error("{path} decompresses past {limit} bytes, {why}: the stream is damaged or holds more than the file it claims to be; if the file is right, raise the limit with --max-decompressed SIZE")]
    TooLarge {
        /// The compressed file.
        path: PathBuf,
        /// The limit passed.
        limit: u64,
        /// Where the limit comes from.
        why: &'static str,
    },
    /// The decompressed copy would not fit in the temporary directory.
    #[error("the decompressed copy of {path} does not fit in {tmpdir}: it needs more than the {room} bytes free there (coreheap leaves {keep} MiB free); free space there or choose another place with --tmpdir", keep = KEEP_FREE >> 20)]
    NoSpace {
        /// The compressed file.
        path: PathBuf,
        /// Where the temporary file was to go.
        tmpdir: PathBuf,
        /// Bytes the copy could take.
        room: u64,
    },
    /// The temporary file for decompression could not be written.
    #[error("cannot write the decompressed copy of {path} to {tmpdir}: {source}; choose another place with --tmpdir")]
    TempFile {
        /// The compressed file.
        path: PathBuf,
        /// Where the temporary file was to go.
        tmpdir: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// An input file mapped into memory, decompressed first if it was compressed.
pub struct Mapped {
    /// The path the user gave.
    pub path: PathBuf,
    /// The compression it had, if any.
    pub compression: Option<Compression>,
    /// What the (decompressed) bytes start with.
    pub magic: Magic,
    /// The (decompressed) bytes; empty files have no mapping.
    map: Option<Mmap>,
}

impl Mapped {
    /// The file's (decompressed) bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .field("len", &self.bytes().len())
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a regular file for reading. Anything else is refused before it is opened, so that a
/// FIFO cannot block the open and a device cannot be read without end.
fn open_file(path: &Path) -> Result<File, InputError> {
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path).map_err(io_err(path))?.file_type();
    if t.is_file() {
        return File::open(path).map_err(io_err(path));
    }
    let kind = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    let fix = if t.is_dir() {
        "name the file in it".to_string()
    } else {
        format!(
            "save the stream to a file first (`cat {} > core`)",
            path.display()
        )
    };
    Err(InputError::NotAFile {
        path: path.to_path_buf(),
        kind,
        fix,
    })
}

/// Reads up to `n` leading bytes of a file.
pub fn read_head(path: &Path, n: usize) -> Result<Vec<u8>, InputError> {
    let mut f = open_file(path)?;
    let mut buf = Vec::with_capacity(n);
    Read::by_ref(&mut f)
        .take(n as u64)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    Ok(buf)
}

/// Told how far the decompression of an input has gone; the library itself draws nothing.
pub trait ReadProgress {
    /// Decompressing `path`, which holds `total` compressed bytes, starts.
    fn start(&self, _path: &Path, _total: u64) {}
    /// `done` compressed bytes have been read so far.
    fn advance(&self, _done: u64) {}
    /// Decompression ended, done or failed.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct NoReadProgress;

impl ReadProgress for NoReadProgress {}

/// A reader that tells a [`ReadProgress`] how many bytes went through it.
struct Counted<'a, R> {
    inner: R,
    done: u64,
    progress: &'a dyn ReadProgress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.advance(self.done);
        Ok(n)
    }
}

/// Where compressed inputs are decompressed to, and how far.
#[derive(Debug, Clone)]
pub struct Unpack {
    /// Directory for the unnamed temporary files that hold decompressed copies.
    pub tmpdir: PathBuf,
    /// Most bytes a stream may decompress to; `None`: the size a core's ELF headers give (no
    /// limit for other files).
    pub max_bytes: Option<u64>,
}

/// Opens a file, decompressing it into an unnamed temporary file (see [`Unpack`]) when its
/// magic says so.
pub fn open(path: &Path, unpack: &Unpack) -> Result<Mapped, InputError> {
    open_with_progress(path, unpack, &NoReadProgress)
}

/// [`open`], telling `progress` how much of a compressed file has been read.
pub fn open_with_progress(
    path: &Path,
    unpack: &Unpack,
    progress: &dyn ReadProgress,
) -> Result<Mapped, InputError> {
    let head = read_head(path, 512)?;
    let magic = sniff(&head);
    let file = open_file(path)?;
    match magic {
        Magic::Compressed(format) => {
            let total = file.metadata().map_err(io_err(path))?.len();
            progress.start(path, total);
            let out = decompress_to_temp(file, format, path, unpack, progress);
            progress.finish();
            let map = map_file(&out?, path)?;
            let inner = sniff(map.as_deref().unwrap_or(&[]));
            Ok(Mapped {
                path: path.to_path_buf(),
                compression: Some(format),
                magic: inner,
                map,
            })
        }
        _ => Ok(Mapped {
            path: path.to_path_buf(),
            compression: None,
            magic,
            map: map_file(&file, path)?,
        }),
    }
}

/// The first bytes of a file, decompressed as far as asked and no further: enough to read an
/// ELF file's headers and notes without decompressing the rest.
pub struct Head {
    path: PathBuf,
    compression: Option<Compression>,
    reader: Box<dyn Read>,
    buf: Vec<u8>,
    ended: bool,
    limit: usize,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .field("read", &self.buf.len())
            .finish()
    }
}

impl Head {
    /// Opens a file to read at most its first `limit` (decompressed) bytes, on demand.
    pub fn open(path: &Path, limit: usize) -> Result<Head, InputError> {
        let magic = sniff(&read_head(path, 512)?);
        let file = open_file(path)?;
        let (compression, reader): (_, Box<dyn Read>) = match magic {
            Magic::Compressed(format) => (
                Some(format),
                decoder(io::BufReader::new(file), format, path)?,
            ),
            _ => (None, Box::new(file)),
        };
        Ok(Head {
            path: path.to_path_buf(),
            compression,
            reader,
            buf: Vec::new(),
            ended: false,
            limit,
        })
    }

    /// The compression the file has, if any.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// The (decompressed) bytes `[offset, offset + len)`, reading up to there; `None` when they
    /// lie past the end of the file or past the limit.
    pub fn get(&mut self, offset: u64, len: usize) -> Result<Option<&[u8]>, InputError> {
        let Some(end) = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(len))
            .filter(|&e| e <= self.limit)
        else {
            return Ok(None);
        };
        while self.buf.len() < end && !self.ended {
            let have = self.buf.len();
            let want = end.max(have + (64 << 10)).min(self.limit);
            self.buf.resize(want, 0);
            let n =
                read_full(&mut self.reader, &mut self.buf[have..]).map_err(|source| match self
                    .compression
                {
                    Some(format) => InputError::Decompress {
                        path: self.path.clone(),
                        format: format.name(),
                        source,
                    },
                    None => InputError::Io {
                        path: self.path.clone(),
                        source,
                    },
                })?;
            self.buf.truncate(have + n);
            self.ended = have + n < want;
        }
        let start = end - len;
        Ok(self.buf.get(start..end))
    }

    /// How many (decompressed) bytes have been read so far.
    pub fn bytes_read(&self) -> usize {
        self.buf.len()
    }
}

fn map_file(file: &File, path: &Path) -> Result<Option<Mmap>, InputError> {
    let len = file.metadata().map_err(io_err(path))?.len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the mapping is read-only; a file changed underneath us by another process
    // can only give wrong data, which every reader treats as untrusted anyway.
    let map = unsafe { Mmap::map(file) }.map_err(io_err(path))?;
    Ok(Some(map))
}

/// A decoder for `format` reading compressed bytes from `src`.
fn decoder<'a>(
    src: impl io::BufRead + 'a,
    format: Compression,
    path: &Path,
) -> Result<Box<dyn Read + 'a>, InputError> {
    let failed = |source| InputError::Decompress {
        path: path.to_path_buf(),
        format: format.name(),
        source,
    };
    Ok(match format {
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(src).map_err(failed)?;
            // Cores are compressed with long windows (systemd uses --long); allow the maximum.
            d.window_log_max(31).map_err(failed)?;
            Box::new(d)
        }
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(src)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(src)),
    })
}

/// Decompresses into an unnamed temporary file, leaving zero blocks as holes.
fn decompress_to_temp(
    file: File,
    format: Compression,
    path: &Path,
    unpack: &Unpack,
    progress: &dyn ReadProgress,
) -> Result<File, InputError> {
    let tmpdir = unpack.tmpdir.as_path();
    let counted = Counted {
        inner: file,
        done: 0,
        progress,
    };
    let mut decoder = decoder(io::BufReader::with_capacity(1 << 20, counted), format, path)?;
    let temp_err = |source| InputError::TempFile {
        path: path.to_path_buf(),
        tmpdir: tmpdir.to_path_buf(),
        source,
    };
    let mut out = tempfile::tempfile_in(tmpdir).map_err(temp_err)?;
    let room = free_space(tmpdir).map(|free| free.saturating_sub(KEEP_FREE));
    let written =
        copy_sparse(&mut decoder, &mut out, unpack.max_bytes, room).map_err(|e| match e {
            SparseError::Read(source) => InputError::Decompress {
                path: path.to_path_buf(),
                format: format.name(),
                source,
            },
            SparseError::Write(source) => temp_err(source),
            SparseError::Past(limit, why) => InputError::TooLarge {
                path: path.to_path_buf(),
                limit,
                why,
            },
            SparseError::NoRoom(room) => InputError::NoSpace {
                path: path.to_path_buf(),
                tmpdir: tmpdir.to_path_buf(),
                room,
            },
        })?;
    out.set_len(written).map_err(temp_err)?;
    Ok(out)
}

enum SparseError {
    Read(io::Error),
    Write(io::Error),
    /// The stream went past the limit (bytes, and where it comes from).
    Past(u64, &'static str),
    /// The copy would take more than this many bytes of disk.
    NoRoom(u64),
}

/// Bytes a decompressed copy leaves free in its directory, for everything else on that disk.
const KEEP_FREE: u64 = 64 << 20;

/// Bytes free to an unprivileged writer in the file system holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The size of the ELF core whose first bytes are `head`, as its headers give it: the end of
/// the section header table or of the last segment's bytes, whichever is later. `None` when
/// `head` is not the start of a 64-bit little-endian ELF core whose program headers it
/// holds (an executable's sections may lie past both, so only cores are sized this way).
fn elf_size(head: &[u8]) -> Option<u64> {
    use object::read::elf::{FileHeader, ProgramHeader};
    use object::{elf, Endianness};
    // The same header reading the core's parser does (`core::CoreFile::parse`), on the first
    // bytes only: program headers past them, or a count kept in the first section header
    // (over 65534 segments), give no size.
    let header = elf::FileHeader64::<Endianness>::parse(head).ok()?;
    let endian = header.endian().ok()?;
    if endian != Endianness::Little || header.e_type(endian) != elf::ET_CORE {
        return None;
    }
    let phdrs = header.program_headers(endian, head).ok()?;
    let table_end = |off: u64, n: u64, size: u16| off.checked_add(n.checked_mul(u64::from(size))?);
    let mut end = table_end(
        header.e_phoff(endian),
        phdrs.len() as u64,
        header.e_phentsize(endian),
    )?;
    if header.e_shoff(endian) != 0 {
        let shdrs = table_end(
            header.e_shoff(endian),
            u64::from(header.e_shnum(endian)),
            header.e_shentsize(endian),
        )?;
        end = end.max(shdrs);
    }
    for ph in phdrs {
        end = end.max(ph.p_offset(endian).checked_add(ph.p_filesz(endian))?);
    }
    Some(end)
}

/// Copies a stream to a file, seeking over all-zero 4 KiB blocks so they stay holes; stops
/// past `max` bytes, or else past the size a core's ELF headers give, and before the blocks
/// written would take more than `room` bytes of disk.
fn copy_sparse(
    src: &mut dyn Read,
    dst: &mut File,
    max: Option<u64>,
    room: Option<u64>,
) -> Result<u64, SparseError> {
    const BLOCK: usize = 4096;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut stored = 0u64;
    let mut limit = max.map(|m| (m, "the --max-decompressed limit"));
    loop {
        let n = read_full(src, &mut buf).map_err(SparseError::Read)?;
        if n == 0 {
            break;
        }
        if total == 0 && limit.is_none() {
            limit = elf_size(&buf[..n]).map(|s| (s, "the size its ELF headers give"));
        }
        if let Some((limit, why)) = limit {
            if total + n as u64 > limit {
                return Err(SparseError::Past(limit, why));
            }
        }
        for chunk in buf[..n].chunks(BLOCK) {
            if chunk.iter().all(|&b| b == 0) {
                dst.seek(SeekFrom::Current(chunk.len() as i64))
                    .map_err(SparseError::Write)?;
            } else {
                stored += chunk.len() as u64;
                if let Some(room) = room.filter(|&r| stored > r) {
                    return Err(SparseError::NoRoom(room));
                }
                dst.write_all(chunk).map_err(SparseError::Write)?;
            }
        }
        total += n as u64;
    }
    Ok(total)
}

/// Fills `buf` as far as the stream allows; returns how many bytes were read.
fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_formats() {
        assert_eq!(sniff(b"\x7fELF\x02"), Magic::Elf);
        assert_eq!(
            sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Magic::Compressed(Compression::Zstd)
        );
        assert_eq!(sniff(b"BZh91AY"), Magic::Unsupported("bzip2"));
        assert_eq!(sniff(b""), Magic::Empty);
        assert_eq!(sniff(b"hello"), Magic::Unknown);
    }

    #[test]
    fn decompressed_copy_keeps_zero_runs_as_holes_and_exact_length() {
        let mut data = vec![0u8; 3 * 1024 * 1024 + 17];
        data[5] = 1;
        let last = data.len() - 1;
        data[last] = 9;
        let compressed = zstd::encode_all(&data[..], 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.zst");
        std::fs::write(&p, compressed).unwrap();
        let m = open(
            &p,
            &Unpack {
                tmpdir: dir.path().to_path_buf(),
                max_bytes: None,
            },
        )
        .unwrap();
        assert_eq!(m.compression, Some(Compression::Zstd));
        assert_eq!(m.bytes(), &data[..]);
    }

    #[test]
    fn head_decompresses_only_what_is_asked() {
        let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let compressed = zstd::encode_all(&data[..], 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.zst");
        std::fs::write(&p, compressed).unwrap();
        let mut h = Head::open(&p, 8 << 20).unwrap();
        assert_eq!(h.compression(), Some(Compression::Zstd));
        assert_eq!(h.get(1000, 16).unwrap(), Some(&data[1000..1016]));
        assert!(h.bytes_read() < 1 << 20, "read {}", h.bytes_read());
        // Past the end of the data, and past the limit: nothing.
        assert_eq!(h.get(data.len() as u64 - 8, 16).unwrap(), None);
        assert_eq!(h.get(9 << 20, 16).unwrap(), None);
        assert_eq!(
            h.get(data.len() as u64 - 8, 8).unwrap(),
            Some(&data[data.len() - 8..])
        );
    }
}
