import CProfiler
import Synchronization

/// The process's CPU profiler (there is one SIGPROF timer per process, hence one profiler).
///
/// The signal handler (C, in `CProfiler`) records raw stacks into preallocated memory; once a
/// second, and when a profile is written, they are moved out and counted per distinct stack
/// here. Writing symbolises the addresses from the ELF symbol tables of the binary and its
/// libraries, demangles Swift names, and stores a pprof profile that `go tool pprof` reads.
public final class CPUProfiler: Sendable {
    public static let shared = CPUProfiler()

    /// Samples per CPU-second.
    public static let frequency = 100

    /// Samples the handler can hold between two collections (one a second).
    private static let capacity = 4096

    private struct State {
        var path: String?
        var stacks: [[UInt64]: Int] = [:]
        var startedWallTime: Double = 0
        var startedMonotonic: ContinuousClock.Instant = .now
        var dropped = 0
        var collector: Task<Void, Never>?
    }

    /// Also serialises every call into `CProfiler`: its start, stop and collect must not overlap.
    private let state = Locked(State())

    public struct ProfilerError: Error, CustomStringConvertible {
        public let description: String
    }

    private init() {}

    /// Whether a profile is being taken.
    public var isRunning: Bool { state.withLock { $0.path != nil } }

    /// Starts sampling; the profile goes to `path` on `write()` and `stop()`.
    @discardableResult
    public func start(writingTo path: String) throws -> String {
        do {
            try FileBytes.checkWritable(path)
        } catch {
            throw ProfilerError(description: "cannot write profile \"\(path)\": \(error.reason)")
        }
        try state.withLock { state in
            guard state.path == nil else { throw ProfilerError(description: "a CPU profile is already being written to \(state.path!)") }
            let result = tf_profiler_start(Int32(Self.frequency), Self.capacity)
            guard result == 0 else { throw ProfilerError(description: "cannot start the CPU profiler: \(ConnectFailure.errnoText(-result))") }
            state = State(path: path, startedWallTime: WallClock.now, startedMonotonic: .now)
            state.collector = Task.detached { [weak self] in
                while (try? await Task.sleep(for: .seconds(1))) != nil {
                    self?.state.withLock { Self.collect(into: &$0) }
                }
            }
        }
        return "CPU profile started; it will be written to \(path)"
    }

    /// Writes the profile so far and goes on sampling.
    @discardableResult
    public func write() throws -> String {
        let taken = try state.withLock { state in
            guard state.path != nil else { throw ProfilerError(description: "no CPU profile is being taken") }
            Self.collect(into: &state)
            return state
        }
        return try Self.write(taken)
    }

    /// Stops sampling and writes the profile.
    @discardableResult
    public func stop() throws -> String {
        let taken = try state.withLock { state in
            guard state.path != nil else { throw ProfilerError(description: "no CPU profile is being taken") }
            tf_profiler_stop()
            Self.collect(into: &state)
            state.collector?.cancel()
            defer { state = State() }
            return state
        }
        return try Self.write(taken)
    }

    /// Symbolises and writes what was taken, outside the lock: reading the symbol tables of
    /// the binary and its libraries takes a while, and the collector must not wait for it.
    private static func write(_ taken: State) throws -> String {
        let path = taken.path!
        let encoded = PprofBuilder.encode(
            stacks: taken.stacks, frequency: frequency, startWallTime: taken.startedWallTime,
            duration: ContinuousClock.now - taken.startedMonotonic)
        do {
            try FileBytes.writeAtomically(encoded, to: path)
        } catch {
            throw ProfilerError(description: "cannot write profile \"\(path)\": \(error.reason)")
        }
        let count = taken.stacks.values.reduce(0, +)
        return "wrote CPU profile \(path): \(count) samples" + (taken.dropped > 0 ? ", \(taken.dropped) dropped" : "")
    }

    /// Moves the handler's samples into the per-stack counts. Called with the lock held, so
    /// that it never overlaps another collection, or a start or stop of the C profiler.
    private static func collect(into state: inout State) {
        guard state.path != nil else { return }
        var buffer = [UInt](repeating: 0, count: tf_profiler_collect_capacity())
        var dropped = 0
        let words = buffer.withUnsafeMutableBufferPointer { pointer in
            tf_profiler_collect(pointer.baseAddress, pointer.count, &dropped)
        }
        state.dropped += dropped
        var index = 0
        while index < words {
            let depth = Int(buffer[index])
            let stack = buffer[(index + 1)..<(index + 1 + depth)].map { UInt64($0) }
            state.stacks[stack, default: 0] += 1
            index += 1 + depth
        }
    }
}

/// Turns counted stacks into a symbolised pprof profile.
enum PprofBuilder {
    static func encode(stacks: [[UInt64]: Int], frequency: Int, startWallTime: Double, duration: Duration) -> [UInt8] {
        let maps = MemoryMaps()
        var symbolTables: [String: ELFSymbols?] = [:]
        var encoder = PprofEncoder()
        let period = Int64(1_000_000_000 / frequency)
        encoder.periodNanoseconds = period
        encoder.startNanoseconds = Int64(startWallTime * 1e9)
        encoder.durationNanoseconds = duration.nanosecondsClamped

        var mappingIDs: [UInt64: UInt64] = [:]  // mapping start -> id
        var locationIDs: [UInt64: UInt64] = [:]
        var functionIDs: [String: UInt64] = [:]

        func location(_ address: UInt64, isLeaf: Bool) -> UInt64 {
            if let id = locationIDs[address] { return id }
            let id = UInt64(locationIDs.count + 1)
            locationIDs[address] = id
            var mappingID: UInt64 = 0
            var functionID: UInt64?
            if let mapping = maps.mapping(containing: address) {
                if let known = mappingIDs[mapping.start] {
                    mappingID = known
                } else {
                    mappingID = UInt64(mappingIDs.count + 1)
                    mappingIDs[mapping.start] = mappingID
                    encoder.mappings.append(
                        .init(id: mappingID, start: mapping.start, limit: mapping.end, fileOffset: mapping.fileOffset, file: mapping.path))
                }
                if symbolTables[mapping.path] == nil {
                    symbolTables[mapping.path] = FileBytes.read(mapping.path).flatMap { ELFSymbols(bytes: $0) }
                }
                // A return address points after the call; look up the call itself.
                let lookup = isLeaf ? address : address - 1
                if let table = symbolTables[mapping.path] ?? nil,
                    let virtual = table.virtualAddress(fileOffset: lookup - mapping.start + mapping.fileOffset),
                    let symbol = table.symbol(containing: virtual)
                {
                    if let known = functionIDs[symbol.name] {
                        functionID = known
                    } else {
                        let newID = UInt64(functionIDs.count + 1)
                        functionIDs[symbol.name] = newID
                        encoder.functions.append(
                            .init(id: newID, name: SymbolNames.demangle(symbol.name), systemName: symbol.name, file: mapping.path))
                        functionID = newID
                    }
                }
            }
            encoder.locations.append(.init(id: id, mappingID: mappingID, address: address, functionID: functionID))
            return id
        }

        for (stack, count) in stacks {
            let ids = stack.enumerated().map { location($0.element, isLeaf: $0.offset == 0) }
            encoder.samples.append(.init(locationIDs: ids, values: [Int64(count), Int64(count) * period]))
        }
        return encoder.encode()
    }
}

/// The control socket's `profile start|stop`, backed by the process's profiler.
public struct ProfilerControl: ControlService.Profiling {
    public init() {}

    public func start(writingTo path: String) throws -> String {
        try CPUProfiler.shared.start(writingTo: path)
    }

    public func stop() throws -> String {
        try CPUProfiler.shared.stop()
    }
}
