//! The runtime's function table (pclntab): function lookup by pc, names, pc-value tables,
//! PCDATA and FUNCDATA, read through `runtime.firstmoduledata` with layouts from DWARF.

use std::borrow::Cow;

use super::{Runtime, RuntimeError};
use crate::memory::{Addr, MemError, Memory};
use crate::reader::{Bytes, Cursor};

/// `_func.flag`: the function marks the top of a stack (goexit, mstart, rt0_go).
pub(crate) const FLAG_TOP_FRAME: u8 = 1;
/// `_func.flag`: the function writes SP in ways the pcsp table does not describe.
pub(crate) const FLAG_SP_WRITE: u8 = 2;
/// `_func.args` of functions whose argument size is not known statically (reflect stubs).
pub(crate) const ARGS_SIZE_UNKNOWN: i32 = -0x8000_0000;
/// `abi.PCDATA_StackMapIndex`.
pub(crate) const PCDATA_STACK_MAP_INDEX: u32 = 1;
/// `abi.FUNCDATA_ArgsPointerMaps`.
pub(crate) const FUNCDATA_ARGS_POINTER_MAPS: u8 = 0;
/// `abi.FUNCDATA_LocalsPointerMaps`.
pub(crate) const FUNCDATA_LOCALS_POINTER_MAPS: u8 = 1;
/// `abi.FUNCDATA_StackObjects`.
pub(crate) const FUNCDATA_STACK_OBJECTS: u8 = 2;
/// `abi.FUNCDATA_InlTree`.
const FUNCDATA_INL_TREE: u8 = 3;
/// `abi.PCDATA_InlTreeIndex`.
const PCDATA_INL_TREE_INDEX: u32 = 2;
/// The most inlined calls expanded at one pc.
const MAX_INLINE_DEPTH: usize = 100;

// Each step of a pc-value table is a zigzag uvarint value delta then a uvarint pc delta times
// the pc quantum; a zero value delta ends the table except on the first step. The value starts
// at -1 and is in force from the previous pc up to (not including) the new one.

/// The value in force at `targetpc` of a pc-value table (`pcvalue`); `None` past its end.
pub fn decode_pcvalue(table: &[u8], entry: u64, targetpc: u64, quantum: u64) -> Option<i32> {
    let mut c = Cursor::new(table);
    let mut pc = entry;
    let mut val: i32 = -1;
    let mut first = true;
    loop {
        let uvdelta = c.uvarint32()?;
        if uvdelta == 0 && !first {
            return None;
        }
        first = false;
        let delta = -((uvdelta & 1) as i32) ^ ((uvdelta >> 1) as i32);
        val = val.wrapping_add(delta);
        let pcdelta = c.uvarint32()?;
        pc = pc.checked_add(u64::from(pcdelta).checked_mul(quantum)?)?;
        if targetpc < pc {
            return Some(val);
        }
    }
}

/// Offsets of `runtime._func` fields, from DWARF.
#[derive(Debug, Clone, Copy)]
struct FuncLayout {
    entry_off: u64,
    name_off: u64,
    args: u64,
    deferreturn: u64,
    pcsp: u64,
    pcfile: u64,
    pcln: u64,
    cu_offset: u64,
    npcdata: u64,
    flag: u64,
    nfuncdata: u64,
}

/// One function's `_func` record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Func {
    /// Address of the `_func` record.
    pub addr: Addr,
    /// Runtime address of the first instruction.
    pub entry: u64,
    /// Offset of the name in funcnametab.
    pub name_off: i32,
    /// Size of arguments and results, or `ARGS_SIZE_UNKNOWN`.
    pub args: i32,
    /// Offset of the deferreturn call from entry, 0 if none.
    pub deferreturn: u32,
    /// Offset of the pcsp table in pctab (0: no frame information).
    pub pcsp: u32,
    /// Offset of the pc→file-number table in pctab.
    pub pcfile: u32,
    /// Offset of the pc→line table in pctab.
    pub pcln: u32,
    /// Index of the function's compilation unit in cutab.
    pub cu_offset: u32,
    /// Number of PCDATA tables.
    pub npcdata: u32,
    /// FuncFlag bits.
    pub flag: u8,
    /// Number of FUNCDATA entries.
    pub nfuncdata: u8,
    /// Offset of the PCDATA offsets array from `addr` (just past `nfuncdata`).
    varlen: u64,
}

/// The pclntab of the main module.
pub(crate) struct Pclntab<'a> {
    mem: &'a Memory,
    /// `moduledata.text`.
    text: u64,
    minpc: u64,
    maxpc: u64,
    /// `moduledata.gofunc`: base of FUNCDATA offsets.
    pub gofunc: u64,
    /// `moduledata.rodata`: base of stack object GC masks.
    pub rodata: u64,
    /// `pcHeader.minLC`: 1 on amd64, 4 on arm64.
    pub quantum: u64,
    /// ftab entries: (entryoff, funcoff), the last being the end marker.
    ftab: Vec<(u32, u32)>,
    /// Text sections as (vaddr, end, baseaddr) when the text is split (rare; large binaries).
    textsects: Vec<(u64, u64, u64)>,
    pclntable: Addr,
    pclntable_len: u64,
    pctab: Cow<'a, [u8]>,
    funcnametab: Cow<'a, [u8]>,
    /// `moduledata.cutab` and `filetab`, for file names; read on first use.
    files: std::cell::OnceCell<Option<FileTables<'a>>>,
    /// `moduledata` address, to read the file tables from.
    moduledata: Addr,
    /// Offsets of `moduledata.cutab` and `filetab`, and of `inlinedCall.nameOff`/`parentPc`.
    src_layout: Option<SourceLayout>,
    layout: FuncLayout,
}

/// DWARF offsets for source positions: the file tables and the inline tree's records.
#[derive(Debug, Clone, Copy)]
struct SourceLayout {
    cutab: u64,
    filetab: u64,
    inl_size: u64,
    inl_name_off: u64,
    inl_parent_pc: u64,
}

/// The file name tables of the module.
struct FileTables<'a> {
    cutab: Cow<'a, [u8]>,
    filetab: Cow<'a, [u8]>,
}

/// One source position at a pc: the function (an inlined one, or the physical one), file
/// and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePos {
    /// Function name.
    pub function: String,
    /// File name as the linker recorded it (`-trimpath` makes it module-relative).
    pub file: String,
    /// Line number, 0 when unknown.
    pub line: u32,
    /// Whether the compiler inlined this call into the function holding the pc.
    pub inlined: bool,
}

/// Reads a Go slice header {ptr, len, cap} at `a`.
fn slice(mem: &Memory, a: Addr) -> Result<(Addr, u64), MemError> {
    Ok((mem.ptr(a)?, mem.u64(a.offset(8))?))
}

impl<'a> Pclntab<'a> {
    /// Reads `runtime.firstmoduledata` and the tables it points to.
    // One function: a list of `moduledata`'s fields read in turn into the one struct they
    // make, each with its own check; nothing in it loops.
    pub fn new(rt: &Runtime<'a>) -> Result<Pclntab<'a>, RuntimeError> {
        let mem: &'a Memory = &rt.p.mem;
        let d = rt.dwarf();
        let md = "runtime.moduledata";
        let base = rt.global("runtime.firstmoduledata")?;
        let err = |what: &str| {
            let what = format!("runtime.firstmoduledata.{what}");
            move |source| RuntimeError::Memory { what, source }
        };
        let field_slice = |name: &str| -> Result<(Addr, u64), RuntimeError> {
            let off = d.offset(md, name)?;
            slice(mem, base.offset(off)).map_err(err(name))
        };
        let text = rt.field_uint(base, md, "text")?;
        let minpc = rt.field_uint(base, md, "minpc")?;
        let maxpc = rt.field_uint(base, md, "maxpc")?;
        let gofunc = rt.field_uint(base, md, "gofunc")?;
        let rodata = rt.field_uint(base, md, "rodata")?;
        let header = rt.field_ptr(base, md, "pcHeader")?;
        let quantum = rt.field_uint(header, "runtime.pcHeader", "minLC")?;
        let quantum = if quantum == 0 { 1 } else { quantum };

        let (ftab_ptr, ftab_len) = field_slice("ftab")?;
        let ftab_len = ftab_len.min(1 << 24);
        let raw = mem
            .read(ftab_ptr, (ftab_len * 8) as usize)
            .map_err(err("ftab"))?;
        let ftab = raw
            .chunks_exact(8)
            .map(Bytes)
            .filter_map(|c| Some((c.u32(0)?, c.u32(4)?)))
            .collect();

        let mut textsects = Vec::new();
        if let Ok((ts_ptr, ts_len)) = field_slice("textsectmap") {
            if ts_len > 1 {
                for i in 0..ts_len.min(1024) {
                    let e = ts_ptr.offset(24 * i);
                    let (Ok(v), Ok(end), Ok(b)) =
                        (mem.u64(e), mem.u64(e.offset(8)), mem.u64(e.offset(16)))
                    else {
                        break;
                    };
                    textsects.push((v, end, b));
                }
            }
        }

        let (pclntable, pclntable_len) = field_slice("pclntable")?;
        let (pctab_ptr, pctab_len) = field_slice("pctab")?;
        let (names_ptr, names_len) = field_slice("funcnametab")?;
        let pctab = mem
            .read(pctab_ptr, pctab_len.min(1 << 30) as usize)
            .map_err(err("pctab"))?;
        let funcnametab = mem
            .read(names_ptr, names_len.min(1 << 30) as usize)
            .map_err(err("funcnametab"))?;

        let f = "runtime._func";
        let layout = FuncLayout {
            entry_off: d.offset(f, "entryOff")?,
            name_off: d.offset(f, "nameOff")?,
            args: d.offset(f, "args")?,
            deferreturn: d.offset(f, "deferreturn")?,
            pcsp: d.offset(f, "pcsp")?,
            pcfile: d.offset(f, "pcfile")?,
            pcln: d.offset(f, "pcln")?,
            cu_offset: d.offset(f, "cuOffset")?,
            npcdata: d.offset(f, "npcdata")?,
            flag: d.offset(f, "flag")?,
            nfuncdata: d.offset(f, "nfuncdata")?,
        };
        let src_layout = (|| {
            let ic = "runtime.inlinedCall";
            Some(SourceLayout {
                cutab: d.offset(md, "cutab").ok()?,
                filetab: d.offset(md, "filetab").ok()?,
                inl_size: d.size_of(ic).ok()?,
                inl_name_off: d.offset(ic, "nameOff").ok()?,
                inl_parent_pc: d.offset(ic, "parentPc").ok()?,
            })
        })();
        Ok(Pclntab {
            files: std::cell::OnceCell::new(),
            moduledata: base,
            src_layout,
            mem,
            text,
            minpc,
            maxpc,
            gofunc,
            rodata,
            quantum,
            ftab,
            textsects,
            pclntable,
            pclntable_len,
            pctab,
            funcnametab,
            layout,
        })
    }

    /// `moduledata.textOff`: a pc as an offset in the (possibly split) text.
    fn text_off(&self, pc: u64) -> Option<u32> {
        if self.textsects.len() > 1 {
            let last = self.textsects.len() - 1;
            for (i, &(vaddr, end, baseaddr)) in self.textsects.iter().enumerate() {
                if baseaddr > pc {
                    return None;
                }
                let mut sect_end = baseaddr.saturating_add(end.saturating_sub(vaddr));
                if i == last {
                    sect_end = sect_end.saturating_add(1);
                }
                if pc < sect_end {
                    return u32::try_from((pc - baseaddr).wrapping_add(vaddr)).ok();
                }
            }
        }
        u32::try_from(pc.checked_sub(self.text)?).ok()
    }

    /// `moduledata.textAddr`: a text offset as a runtime address.
    fn text_addr(&self, off: u32) -> u64 {
        let off = u64::from(off);
        if self.textsects.len() > 1 {
            let last = self.textsects.len() - 1;
            for (i, &(vaddr, end, baseaddr)) in self.textsects.iter().enumerate() {
                if off >= vaddr && off < end || (i == last && off == end) {
                    return baseaddr.wrapping_add(off - vaddr);
                }
            }
        }
        self.text.wrapping_add(off)
    }

    /// The function containing `pc` (`findfunc`), by binary search in ftab.
    pub fn find(&self, pc: u64) -> Option<Func> {
        if pc < self.minpc || pc >= self.maxpc || self.ftab.len() < 2 {
            return None;
        }
        let off = self.text_off(pc)?;
        // The last ftab entry is the end marker; find the last real entry with entryoff <= off.
        let n = self.ftab.len() - 1;
        let i = self.ftab[..n].partition_point(|&(e, _)| e <= off);
        let (_, funcoff) = *self.ftab.get(i.checked_sub(1)?)?;
        self.func_at(funcoff)
    }

    /// Reads the `_func` record at `funcoff` in pclntable.
    fn func_at(&self, funcoff: u32) -> Option<Func> {
        let l = &self.layout;
        if u64::from(funcoff) >= self.pclntable_len {
            return None;
        }
        let addr = self.pclntable.offset(u64::from(funcoff));
        let varlen = l.nfuncdata + 1;
        let raw = self.mem.read(addr, varlen as usize).ok()?;
        let b = Bytes(&raw);
        let u32_at = |o: u64| b.u32(usize::try_from(o).ok()?);
        let entry_off = u32_at(l.entry_off)?;
        Some(Func {
            addr,
            entry: self.text_addr(entry_off),
            name_off: u32_at(l.name_off)? as i32,
            args: u32_at(l.args)? as i32,
            deferreturn: u32_at(l.deferreturn)?,
            pcsp: u32_at(l.pcsp)?,
            pcfile: u32_at(l.pcfile)?,
            pcln: u32_at(l.pcln)?,
            cu_offset: u32_at(l.cu_offset)?,
            npcdata: u32_at(l.npcdata)?,
            flag: b.u8(usize::try_from(l.flag).ok()?)?,
            nfuncdata: b.u8(usize::try_from(l.nfuncdata).ok()?)?,
            varlen,
        })
    }

    /// The function's name from funcnametab.
    pub fn name(&self, f: &Func) -> String {
        self.name_at(f.name_off)
    }

    /// The name at an offset in funcnametab; empty when out of range.
    fn name_at(&self, name_off: i32) -> String {
        let Ok(start) = usize::try_from(name_off) else {
            return String::new();
        };
        let Some(rest) = self.funcnametab.get(start..) else {
            return String::new();
        };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    }

    /// The value of the pc-value table at `off` in force at `targetpc` (`pcvalue`).
    pub fn pcvalue(&self, f: &Func, off: u32, targetpc: u64) -> Option<i32> {
        if off == 0 {
            return None;
        }
        let table = self.pctab.get(off as usize..)?;
        decode_pcvalue(table, f.entry, targetpc, self.quantum)
    }

    /// The SP delta at `pc` (`funcspdelta`): how far SP sits below the frame's top.
    pub fn spdelta(&self, f: &Func, pc: u64) -> Option<i32> {
        self.pcvalue(f, f.pcsp, pc)
    }

    /// PCDATA table `table` at `targetpc` (`pcdatavalue`); -1 when absent.
    pub fn pcdata(&self, f: &Func, table: u32, targetpc: u64) -> i32 {
        if table >= f.npcdata {
            return -1;
        }
        let Ok(start) = self.mem.u32(f.addr.offset(f.varlen + 4 * u64::from(table))) else {
            return -1;
        };
        self.pcvalue(f, start, targetpc).unwrap_or(-1)
    }

    /// Address of FUNCDATA `i`, if the function has it (`funcdata`).
    pub fn funcdata(&self, f: &Func, i: u8) -> Option<Addr> {
        if i >= f.nfuncdata {
            return None;
        }
        let at = f
            .addr
            .offset(f.varlen + 4 * u64::from(f.npcdata) + 4 * u64::from(i));
        let off = self.mem.u32(at).ok()?;
        (off != u32::MAX).then(|| Addr(self.gofunc.wrapping_add(u64::from(off))))
    }
}

impl Pclntab<'_> {
    /// The file tables, read on first use.
    fn files(&self) -> Option<&FileTables<'_>> {
        self.files
            .get_or_init(|| {
                let l = self.src_layout?;
                let read = |off: u64, unit: u64| {
                    let (p, n) = slice(self.mem, self.moduledata.offset(off)).ok()?;
                    self.mem
                        .read(p, n.min(1 << 30).saturating_mul(unit) as usize)
                        .ok()
                };
                Some(FileTables {
                    cutab: read(l.cutab, 4)?,
                    filetab: read(l.filetab, 1)?,
                })
            })
            .as_ref()
    }

    /// File and line at `pc` in `f` (`funcline1`); `?` and 0 when the tables do not say.
    pub fn file_line(&self, f: &Func, pc: u64) -> (String, u32) {
        let unknown = || ("?".to_string(), 0);
        let (Some(fileno), Some(line)) =
            (self.pcvalue(f, f.pcfile, pc), self.pcvalue(f, f.pcln, pc))
        else {
            return unknown();
        };
        let (Ok(fileno), Ok(line)) = (u32::try_from(fileno), u32::try_from(line)) else {
            return unknown();
        };
        let Some(t) = self.files() else {
            return unknown();
        };
        let at = 4 * (u64::from(f.cu_offset) + u64::from(fileno)) as usize;
        let Some(off) = Bytes(&t.cutab).u32(at) else {
            return unknown();
        };
        let Some(rest) = t.filetab.get(off as usize..) else {
            return unknown();
        };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        (String::from_utf8_lossy(&rest[..end]).into_owned(), line)
    }

    /// The source positions at `pc` in `f`, innermost inlined call first, the physical
    /// function last (`inlineUnwinder`: each inlined call's `parentPc` is an instruction at its
    /// call site).
    pub fn source_positions(&self, f: &Func, pc: u64) -> Vec<SourcePos> {
        let tree = self.src_layout.zip(self.funcdata(f, FUNCDATA_INL_TREE));
        let mut out = Vec::new();
        let mut pc = pc;
        for _ in 0..MAX_INLINE_DEPTH {
            let (file, line) = self.file_line(f, pc);
            let index = match tree {
                Some(_) => self.pcdata(f, PCDATA_INL_TREE_INDEX, pc),
                None => -1,
            };
            let call = tree.filter(|_| index >= 0).and_then(|(l, base)| {
                let rec = base.offset(l.inl_size * index as u64);
                let name_off = self.mem.u32(rec.offset(l.inl_name_off)).ok()? as i32;
                let parent = self.mem.u32(rec.offset(l.inl_parent_pc)).ok()? as i32;
                Some((name_off, parent))
            });
            let Some((name_off, parent)) = call else {
                out.push(SourcePos {
                    function: self.name(f),
                    file,
                    line,
                    inlined: false,
                });
                return out;
            };
            out.push(SourcePos {
                function: self.name_at(name_off),
                file,
                line,
                inlined: true,
            });
            pc = f.entry.wrapping_add_signed(i64::from(parent));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcvalue_steps_through_deltas() {
        // +1 (zigzag 2) over 4 bytes, then +2 (zigzag 4) over 2 more; a zero delta ends it.
        let table = [0x02, 0x04, 0x04, 0x02, 0x00];
        assert_eq!(decode_pcvalue(&table, 0x100, 0x100, 1), Some(0));
        assert_eq!(decode_pcvalue(&table, 0x100, 0x104, 1), Some(2));
        assert_eq!(decode_pcvalue(&table, 0x100, 0x106, 1), None);
    }
}
