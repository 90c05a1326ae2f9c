//! What a function's machine code refers to: the addresses it loads relative to its own
//! position (amd64 `LEAQ sym(SB)`, arm64 `ADRP` + `ADD`). Every map operation passes the map's
//! type descriptor to the runtime, so the map types a function uses can be read from its code.

use crate::core::Arch;
use crate::reader::Bytes;

/// Link-time addresses that the code at `start` loads relative to the program counter.
pub fn pc_relative_targets(code: &[u8], start: u64, arch: Arch) -> Vec<u64> {
    match arch {
        Arch::Amd64 => amd64_lea_targets(code, start),
        Arch::Arm64 => arm64_adrp_add_targets(code, start),
    }
}

/// `LEA r64, [rip + disp32]`: REX.W (0x48 or 0x4c), 0x8d, ModRM with mod 00 and r/m 101.
/// Instructions are not decoded one by one: every byte position is tried, and the caller keeps
/// only targets it knows (a descriptor's exact address), which stray matches do not hit.
fn amd64_lea_targets(code: &[u8], start: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, w) in code.windows(7).enumerate() {
        if matches!(w[0], 0x48 | 0x4c) && w[1] == 0x8d && w[2] & 0xc7 == 0x05 {
            let Some(disp) = Bytes(w).u32(3) else {
                continue;
            };
            let disp = disp as i32;
            let next = start.wrapping_add(i as u64 + 7);
            out.push(next.wrapping_add_signed(i64::from(disp)));
        }
    }
    out
}

/// `ADRP xd, page` followed by `ADD xd, xd, #imm12` (64-bit, unshifted).
fn arm64_adrp_add_targets(code: &[u8], start: u64) -> Vec<u64> {
    let insn = |i: usize| Bytes(code).u32(i.checked_mul(4)?);
    let mut out = Vec::new();
    for i in 0..code.len() / 4 {
        let (Some(a), Some(b)) = (insn(i), insn(i + 1)) else {
            break;
        };
        if a & 0x9f00_0000 != 0x9000_0000 || b & 0xffc0_0000 != 0x9100_0000 {
            continue;
        }
        let rd = a & 0x1f;
        if b & 0x1f != rd || (b >> 5) & 0x1f != rd {
            continue;
        }
        let immlo = u64::from((a >> 29) & 3);
        let immhi = u64::from((a >> 5) & 0x7_ffff);
        // A 21-bit signed page count.
        let pages = ((immhi << 2 | immlo) << 43) as i64 >> 43;
        let pc = start + 4 * i as u64;
        let page = (pc & !0xfff).wrapping_add_signed(pages << 12);
        out.push(page + u64::from((b >> 10) & 0xfff));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amd64_lea_rip_relative() {
        // 0x1000: LEAQ 0x10(IP), AX = 48 8d 05 10 00 00 00 → 0x1007 + 0x10.
        let code = [0x90, 0x48, 0x8d, 0x05, 0x10, 0x00, 0x00, 0x00, 0x90];
        assert_eq!(
            pc_relative_targets(&code, 0x1000, Arch::Amd64),
            vec![0x1018]
        );
        // A negative displacement, into R9 (REX.WR = 0x4c, ModRM 0x0d).
        let code = [0x4c, 0x8d, 0x0d, 0xf0, 0xff, 0xff, 0xff];
        assert_eq!(
            pc_relative_targets(&code, 0x2000, Arch::Amd64),
            vec![0x1ff7]
        );
    }

    #[test]
    fn arm64_adrp_add_pair() {
        // At 0x10_0004: ADRP x0, #+2 pages; ADD x0, x0, #0x123.
        // immlo = 2, immhi = 0, rd = 0.
        let adrp: u32 = 0x9000_0000 | (2 << 29);
        let add: u32 = 0x9100_0000 | (0x123 << 10);
        let mut code = Vec::new();
        code.extend_from_slice(&adrp.to_le_bytes());
        code.extend_from_slice(&add.to_le_bytes());
        assert_eq!(
            pc_relative_targets(&code, 0x10_0004, Arch::Arm64),
            vec![0x10_2123]
        );
        // An ADD into another register is no pair.
        let add_x1: u32 = 0x9100_0000 | (0x123 << 10) | 1;
        let mut code = adrp.to_le_bytes().to_vec();
        code.extend_from_slice(&add_x1.to_le_bytes());
        assert!(pc_relative_targets(&code, 0x10_0004, Arch::Arm64).is_empty());
    }
}
