/// Function symbols of one ELF file (64-bit, little-endian), from `.symtab` and `.dynsym`,
/// and the loadable segments that map runtime addresses back to symbol addresses.
///
/// The profiler symbolises from the symbol table rather than with `dladdr`, which knows only
/// exported symbols and so names most Swift functions after an unrelated neighbour.
struct ELFSymbols {
    struct Symbol {
        let address: UInt64
        let size: UInt64
        let name: String
    }

    struct Segment {
        let fileOffset: UInt64
        let fileSize: UInt64
        let virtualAddress: UInt64
    }

    /// Sorted by address.
    let symbols: [Symbol]
    let segments: [Segment]

    init?(bytes: [UInt8]) {
        guard bytes.count > 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46,
            bytes[4] == 2, bytes[5] == 1
        else { return nil }
        func u16(_ at: Int) -> UInt64 { at + 2 <= bytes.count ? UInt64(bytes[at]) | UInt64(bytes[at + 1]) << 8 : 0 }
        func u32(_ at: Int) -> UInt64 { u16(at) | u16(at + 2) << 16 }
        func u64(_ at: Int) -> UInt64 { u32(at) | u32(at + 4) << 32 }

        var segments: [Segment] = []
        let programHeaders = Int(u64(0x20)), programHeaderSize = Int(u16(0x36)), programHeaderCount = Int(u16(0x38))
        for index in 0..<programHeaderCount {
            let at = programHeaders + index * programHeaderSize
            guard at + 56 <= bytes.count else { break }
            if u32(at) == 1 {  // PT_LOAD
                segments.append(Segment(fileOffset: u64(at + 8), fileSize: u64(at + 32), virtualAddress: u64(at + 16)))
            }
        }

        var symbols: [Symbol] = []
        let sections = Int(u64(0x28)), sectionSize = Int(u16(0x3A)), sectionCount = Int(u16(0x3C))
        for index in 0..<sectionCount {
            let at = sections + index * sectionSize
            guard at + 64 <= bytes.count else { break }
            let type = u32(at + 4)
            guard type == 2 || type == 11 else { continue }  // SHT_SYMTAB, SHT_DYNSYM
            let offset = Int(u64(at + 24)), size = Int(u64(at + 32)), link = Int(u32(at + 40))
            let stringsAt = sections + link * sectionSize
            guard stringsAt + 64 <= bytes.count else { continue }
            let strings = Int(u64(stringsAt + 24)), stringsSize = Int(u64(stringsAt + 32))
            var entry = offset
            while entry + 24 <= min(offset + size, bytes.count) {
                defer { entry += 24 }
                let info = bytes[entry + 4]
                let value = u64(entry + 8)
                guard info & 0xF == 2, value != 0 else { continue }  // STT_FUNC
                let nameAt = strings + Int(u32(entry))
                guard nameAt < min(strings + stringsSize, bytes.count) else { continue }
                var end = nameAt
                while end < bytes.count && bytes[end] != 0 { end += 1 }
                symbols.append(Symbol(address: value, size: u64(entry + 16), name: String(decoding: bytes[nameAt..<end], as: UTF8.self)))
            }
        }
        guard !symbols.isEmpty else { return nil }
        symbols.sort { $0.address < $1.address }
        self.symbols = symbols
        self.segments = segments
    }

    /// The symbol address space's address of the byte at `fileOffset + delta` in the mapping.
    func virtualAddress(fileOffset: UInt64) -> UInt64? {
        guard let segment = segments.first(where: { fileOffset >= $0.fileOffset && fileOffset < $0.fileOffset + max($0.fileSize, 1) })
        else { return nil }
        return segment.virtualAddress + (fileOffset - segment.fileOffset)
    }

    /// The function containing `address`, if any.
    func symbol(containing address: UInt64) -> Symbol? {
        var low = 0, high = symbols.count
        while low < high {
            let middle = (low + high) / 2
            if symbols[middle].address <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        let candidate = symbols[low - 1]
        if candidate.size > 0 && address >= candidate.address + candidate.size { return nil }
        return candidate
    }
}
