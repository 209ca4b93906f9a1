/// Executable file mappings of this process, from /proc/self/maps.
struct MemoryMaps {
    struct Mapping {
        let start: UInt64
        let end: UInt64
        let fileOffset: UInt64
        let path: String
    }

    let mappings: [Mapping]

    init() {
        var mappings: [Mapping] = []
        let text = String(decoding: FileBytes.read("/proc/self/maps") ?? [], as: UTF8.self)
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1].contains("x"), fields[5].hasPrefix("/") else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
                let offset = UInt64(fields[2], radix: 16)
            else { continue }
            mappings.append(Mapping(start: start, end: end, fileOffset: offset, path: fields[5...].joined(separator: " ")))
        }
        self.mappings = mappings
    }

    func mapping(containing address: UInt64) -> Mapping? {
        mappings.first { address >= $0.start && address < $0.end }
    }
}
