import Foundation

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// Deterministic bytes for transfer tests: the same seed gives the same stream.
public struct PseudoRandomBytes {
    private var state: UInt64

    public init(seed: UInt64) { state = seed | 1 }

    public mutating func next(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            var word = state
            for _ in 0..<8 where i < count {
                bytes[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return bytes
    }
}

/// FNV-1a, 64 bits: a checksum to compare what was sent with what arrived.
public struct Checksum: Equatable, CustomStringConvertible {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public private(set) var count = 0

    public init() {}

    public mutating func add(_ bytes: [UInt8]) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
        count += bytes.count
    }

    public var description: String { "\(count) bytes, fnv \(String(value, radix: 16))" }

    /// The checksum of the first `count` bytes of `PseudoRandomBytes(seed:)`.
    public init(pseudoRandomSeed seed: UInt64, count: Int) {
        var random = PseudoRandomBytes(seed: seed)
        add(random.next(count))
    }
}

extension TestSocket {
    /// Sends `count` bytes of `PseudoRandomBytes(seed:)`, then ends the stream.
    public func sendPseudoRandom(seed: UInt64, count: Int) {
        var random = PseudoRandomBytes(seed: seed)
        var sent = 0
        while sent < count {
            let chunk = random.next(min(65536, count - sent))
            guard (try? send(chunk)) != nil else { return }
            sent += chunk.count
        }
        shutdownWrite()
    }

    /// Reads to the end of the stream and returns the checksum of everything read.
    public func receiveChecksum() throws -> Checksum {
        var checksum = Checksum()
        while true {
            let chunk = try receive()
            if chunk.isEmpty { return checksum }
            checksum.add(chunk)
        }
    }
}

/// The synchronous `eventually`, for tests that wait on processes and servers: polls
/// `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
public func waitFor(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}

/// Writes `text` to `path` with `mode` (a password file: the owner's alone by default).
public func writeFile(_ text: String, to path: String, mode: mode_t = 0o600) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    chmod(path, mode)
}
