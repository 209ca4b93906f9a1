/// Writes a profile in pprof's format (`profile.proto`, uncompressed protobuf, which
/// `go tool pprof` reads as it reads the gzipped form).
struct PprofEncoder {
    struct Function {
        let id: UInt64
        let name: String
        let systemName: String
        let file: String
    }

    struct Location {
        let id: UInt64
        let mappingID: UInt64
        let address: UInt64
        let functionID: UInt64?
    }

    struct Mapping {
        let id: UInt64
        let start: UInt64
        let limit: UInt64
        let fileOffset: UInt64
        let file: String
    }

    struct Sample {
        let locationIDs: [UInt64]
        let values: [Int64]
    }

    var samples: [Sample] = []
    var locations: [Location] = []
    var functions: [Function] = []
    var mappings: [Mapping] = []
    var startNanoseconds: Int64 = 0
    var durationNanoseconds: Int64 = 0
    var periodNanoseconds: Int64 = 0

    private var strings: [String] = [""]
    private var stringIndex: [String: Int64] = ["": 0]

    private mutating func string(_ text: String) -> Int64 {
        if let index = stringIndex[text] { return index }
        let index = Int64(strings.count)
        strings.append(text)
        stringIndex[text] = index
        return index
    }

    mutating func encode() -> [UInt8] {
        var out = Protobuf()
        let samplesType = valueType("samples", "count")
        let cpuType = valueType("cpu", "nanoseconds")
        out.message(1, samplesType)
        out.message(1, cpuType)
        for sample in samples {
            var message = Protobuf()
            message.packed(1, sample.locationIDs)
            message.packed(2, sample.values.map { UInt64(bitPattern: $0) })
            out.message(2, message)
        }
        for mapping in mappings {
            var message = Protobuf()
            message.varint(1, mapping.id)
            message.varint(2, mapping.start)
            message.varint(3, mapping.limit)
            message.varint(4, mapping.fileOffset)
            message.varint(5, UInt64(string(mapping.file)))
            message.varint(7, 1)  // has_functions
            out.message(3, message)
        }
        for location in locations {
            var message = Protobuf()
            message.varint(1, location.id)
            message.varint(2, location.mappingID)
            message.varint(3, location.address)
            if let function = location.functionID {
                var line = Protobuf()
                line.varint(1, function)
                message.message(4, line)
            }
            out.message(4, message)
        }
        for function in functions {
            var message = Protobuf()
            message.varint(1, function.id)
            message.varint(2, UInt64(string(function.name)))
            message.varint(3, UInt64(string(function.systemName)))
            message.varint(4, UInt64(string(function.file)))
            out.message(5, message)
        }
        out.varint(9, UInt64(bitPattern: startNanoseconds))
        out.varint(10, UInt64(bitPattern: durationNanoseconds))
        out.message(11, cpuType)
        out.varint(12, UInt64(bitPattern: periodNanoseconds))
        // The string table comes last: every string above is in it by now.
        var table = Protobuf()
        for text in strings { table.bytes(6, Array(text.utf8)) }
        return out.bytes + table.bytes
    }

    private mutating func valueType(_ type: String, _ unit: String) -> Protobuf {
        var message = Protobuf()
        message.varint(1, UInt64(string(type)))
        message.varint(2, UInt64(string(unit)))
        return message
    }
}

/// The protobuf wire format, as much of it as a profile needs.
struct Protobuf {
    private(set) var bytes: [UInt8] = []

    private mutating func raw(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        raw(UInt64(field << 3))
        raw(value)
    }

    mutating func bytes(_ field: Int, _ data: [UInt8]) {
        raw(UInt64(field << 3 | 2))
        raw(UInt64(data.count))
        bytes += data
    }

    mutating func message(_ field: Int, _ message: Protobuf) {
        bytes(field, message.bytes)
    }

    mutating func packed(_ field: Int, _ values: [UInt64]) {
        var body = Protobuf()
        for value in values { body.raw(value) }
        bytes(field, body.bytes)
    }
}
