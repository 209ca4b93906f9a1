/// Cuts a byte stream of concatenated JSON objects (the gateway's streaming answers: one
/// object per line for a watch) into whole objects, wherever the chunks happen to end: a
/// chunk may hold half an object or several. It tracks nesting, strings and escapes rather
/// than looking for newlines, so it does not depend on how the gateway separates objects.
struct JSONObjectSplitter {
    /// A guard against an unending object (a broken or hostile peer): etcd's answers are
    /// bounded by its request size limit, far below this.
    static let maximumObjectSize = 64 * 1024 * 1024

    private var buffer: [UInt8] = []
    /// Where the object being read starts in `buffer` (meaningful while `depth > 0`).
    private var objectStart = 0
    /// The next byte to scan: bytes before it were already scanned.
    private var scanned = 0
    private var depth = 0
    private var inString = false
    private var escaped = false

    init() {}

    /// True while an object has begun but not ended: the stream stopped in the middle of one.
    var hasPartialObject: Bool { depth > 0 }

    /// Adds bytes; returns the objects they completed, in order, each as its own bytes.
    mutating func append<Bytes: Sequence>(_ bytes: Bytes) throws -> [[UInt8]] where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        var objects: [[UInt8]] = []
        while scanned < buffer.count {
            let byte = buffer[scanned]
            if depth == 0 {
                switch byte {
                case UInt8(ascii: "{"):
                    depth = 1
                    objectStart = scanned
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    break
                default:
                    throw EtcdError.badResponse("unexpected byte 0x\(String(byte, radix: 16)) between JSON objects")
                }
            } else if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { objects.append(Array(buffer[objectStart...scanned])) }
                default: break
                }
            }
            scanned += 1
        }
        // Drop what is done with: everything when between objects, else what precedes the
        // object being read (it is kept from its start, for the copy when it completes).
        let keepFrom = depth > 0 ? objectStart : buffer.count
        if keepFrom > 0 {
            buffer.removeFirst(keepFrom)
            scanned -= keepFrom
            objectStart = 0
        }
        if buffer.count > Self.maximumObjectSize {
            throw EtcdError.badResponse("a JSON object longer than \(Self.maximumObjectSize) bytes")
        }
        return objects
    }
}
