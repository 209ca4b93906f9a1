import Foundation
import Synchronization

/// Clients through a proxy, all along, on a thread of their own: each connects, sends a byte
/// and must get it back from an echo backend. What upgrades and reloads are judged by: zero
/// failed clients while they happen.
public final class EchoLoad: Sendable {
    public let port: Int
    private let tally = Mutex((served: 0, failed: [String]()))
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    /// Starts the clients at once.
    public init(port: Int) {
        self.port = port
        let thread = Thread { [self] in
            defer { finished.store(true, ordering: .relaxed) }
            while !stopping.load(ordering: .relaxed) {
                do {
                    let client = try TestSocket.connect(port: port, timeout: 10)
                    defer { client.close() }
                    try client.send("x")
                    guard try client.receive(exactly: 1) == Array("x".utf8) else { throw TestSocket.SocketError(operation: "echo", code: 0) }
                    tally.withLock { $0.served += 1 }
                } catch {
                    tally.withLock { $0.failed.append("\(error)") }
                }
            }
        }
        thread.start()
    }

    /// Stops the clients and says how many were served and why the others failed.
    public func stop() async -> (served: Int, failed: [String]) {
        stopping.store(true, ordering: .relaxed)
        while !finished.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(10)) }
        return tally.withLock { ($0.served, $0.failed) }
    }
}
