import Foundation
import Testing
import TestSupport
import TCPFallback

#if canImport(Glibc)
import Glibc
#endif

/// What happens to the bytes: completeness, half-close, resets.
@Suite struct DataPathTests {
    /// 20 MB from the client and 20 MB from the backend at the same time, checksummed at both
    /// ends: with -splice (the default) most of it moves through pipes, without it all is copied.
    @Test(arguments: [true, false]) func twentyMegabytesEachWayArriveIntact(splice: Bool) async throws {
        let size = 20 * 1024 * 1024
        let received = Checksum.Box()
        let backend = try TestServer { connection in
            // Send our own stream while reading the client's, so both directions are busy.
            let sent = DispatchSemaphore(value: 0)
            Thread {
                connection.sendPseudoRandom(seed: 2, count: size)
                sent.signal()
            }.start()
            received.set(try connection.receiveChecksum())
            sent.wait()
        }
        try await withProxy(backends: [backend.port], configure: { $0.splice = splice }) { (proxy, port) async throws in
            let client = try TestSocket.connect(port: port, timeout: 30)
            defer { client.close() }
            Thread { client.sendPseudoRandom(seed: 1, count: size) }.start()
            #expect(try client.receiveChecksum() == Checksum(pseudoRandomSeed: 2, count: size))
            #expect(await eventually(timeout: .seconds(20)) { received.value == Checksum(pseudoRandomSeed: 1, count: size) })
            #expect(await eventually { proxy.registry.backends[0].counters.values.activeConnections == 0 })
            let counters = proxy.registry.backends[0].counters.values
            #expect(counters.bytesFromClient == size)
            #expect(counters.bytesToClient == size)
            let spliced = proxy.counters.values.splicedBytes
            if splice {
                #expect(spliced > size, "only \(spliced) of \(2 * size) bytes were spliced")
            } else {
                #expect(spliced == 0)
            }
        }
    }

    /// A bulk transfer (spliced) that ends with a half-close: the client gets every byte, then
    /// a clean end, and can still send; the backend gets that. Then the same the other way.
    @Test func aSplicedTransferEndsWithItsLastByteEachWay() async throws {
        let size = 8 * 1024 * 1024
        let received = Checksum.Box()
        let backend = try TestServer { connection in
            connection.sendPseudoRandom(seed: 3, count: size)
            connection.shutdownWrite()
            received.set(try connection.receiveChecksum())
        }
        try await withProxy(backends: [backend.port]) { (proxy, port) async throws in
            let client = try TestSocket.connect(port: port, timeout: 30)
            defer { client.close() }
            #expect(try client.receiveChecksum() == Checksum(pseudoRandomSeed: 3, count: size))
            client.sendPseudoRandom(seed: 4, count: size)
            client.shutdownWrite()
            #expect(await eventually(timeout: .seconds(20)) { received.value == Checksum(pseudoRandomSeed: 4, count: size) })
            #expect(await eventually { proxy.registry.backends[0].counters.values.activeConnections == 0 })
            #expect(proxy.counters.values.splicedBytes > size)
        }
    }

    /// A backend that resets in the middle of a bulk transfer: the client sees a reset after
    /// what was sent, never a clean end.
    @Test func aResetInTheMiddleOfASplicedTransferReachesTheClient() async throws {
        let backend = try TestServer { connection in
            // No end of stream before the reset (sendPseudoRandom would send one).
            let chunk = [UInt8](repeating: 7, count: 65536)
            for _ in 0..<64 { try connection.send(chunk) }
            connection.reset()
        }
        let log = LogCapture()
        // A connect timeout far above any scheduling delay of a loaded machine (the suite runs
        // many tests at once on two cores): what is tested is the reset, not the timeout.
        try await withProxy(backends: [backend.port], timeout: .seconds(20), log: log) { (proxy, port) async throws in
            let client = try TestSocket.connect(port: port, timeout: 30)
            defer { client.close() }
            // The client waits before it reads: the proxy's buffers fill, so its reads fill its
            // 64 KiB buffer and the transfer is spliced whatever the machine's load.
            usleep(200_000)
            let (count, ending) = client.receiveUntilEnd()
            #expect(ending == "reset", "got \(ending) after \(count) bytes instead of a reset; the proxy's log: \(log.all)")
            #expect(proxy.counters.values.splicedBytes > 0)
            #expect(await eventually { proxy.registry.backends[0].counters.values.activeConnections == 0 })
        }
    }

    /// The client ends its stream first; the backend answers after that and everything arrives.
    @Test func clientHalfCloseLetsTheResponseThrough() async throws {
        let backend = try TestServer { connection in
            let request = try connection.receiveToEnd()  // waits for the client's end of stream
            var random = PseudoRandomBytes(seed: 7)
            try connection.send(Array("got \(request.count) bytes\n".utf8))
            try connection.send(random.next(3 * 1024 * 1024))
            connection.close()
        }
        try await withProxy(backends: [backend.port]) { (_, port) async throws in
            let client = try TestSocket.connect(port: port)
            defer { client.close() }
            try client.send(Array(repeating: 65, count: 1000))
            client.shutdownWrite()
            let response = try client.receiveToEnd()
            var random = PseudoRandomBytes(seed: 7)
            let header = Array("got 1000 bytes\n".utf8)
            #expect(response.count == header.count + 3 * 1024 * 1024)
            #expect(Array(response.prefix(header.count)) == header)
            #expect(Array(response.dropFirst(header.count)) == random.next(3 * 1024 * 1024))
        }
    }

    /// A client that sends its request and ends its stream before any backend is connected
    /// (here the first one hangs until the timeout): nothing it sent is lost.
    @Test func bytesSentBeforeTheBackendIsConnectedAreKept() async throws {
        let hung = try HungServer()
        let backend = try TestServer { connection in
            let request = try connection.receiveToEnd()
            try connection.send("got \(request.count) bytes")
            connection.close()
        }
        try await withProxy(backends: [hung.port, backend.port], timeout: .milliseconds(300)) { (_, port) async throws in
            let client = try TestSocket.connect(port: port)
            defer { client.close() }
            try client.send(Array(repeating: 7, count: 5000))
            client.shutdownWrite()
            #expect(String(decoding: try client.receiveToEnd(), as: UTF8.self) == "got 5000 bytes")
        }
    }

    /// The backend ends its stream first (a greeting, then EOF); the client can still send.
    @Test func backendHalfCloseLetsTheClientGoOnSending() async throws {
        let counted = Checksum.Box()
        let backend = try TestServer { connection in
            try connection.send("hello\n")
            connection.shutdownWrite()
            var checksum = Checksum()
            checksum.add(try connection.receiveToEnd())
            counted.set(checksum)
        }
        try await withProxy(backends: [backend.port]) { (_, port) async throws in
            let client = try TestSocket.connect(port: port)
            defer { client.close() }
            #expect(try client.receiveToEnd() == Array("hello\n".utf8))
            let payload = Array(repeating: UInt8(66), count: 2 * 1024 * 1024)
            try client.send(payload)
            client.shutdownWrite()
            var expected = Checksum()
            expected.add(payload)
            #expect(await eventually { counted.value == expected })
        }
    }

    /// A backend that resets the connection: the client sees a reset, never a clean end.
    @Test func aBackendResetReachesTheClientAsAnError() async throws {
        let backend = try TestServer { connection in
            _ = try connection.receive(exactly: 5)
            try connection.send("partial")
            connection.reset()
        }
        let log = LogCapture()
        try await withProxy(backends: [backend.port], log: log) { (_, port) async throws in
            let client = try TestSocket.connect(port: port)
            defer { client.close() }
            try client.send("hello")
            let (count, ending) = client.receiveUntilEnd()
            #expect(ending == "reset", "got \(ending) after \(count) bytes instead of a reset")
        }
        #expect(await eventually { log.contains("backend error: connection reset by peer") })
    }

    /// Bytes and a reset that arrive together (one epoll event with data, end of stream and
    /// error): the bytes are relayed, then the reset, never a clean end. Both directions,
    /// many times, since it depends on how the kernel batches them.
    @Test func resetsRightAfterDataAreNeverCleanEnds() async throws {
        let backendSawReset = Checksum.Box()
        let backend = try TestServer { connection in
            // The client resets right after its bytes (first byte 2; the reset may even come
            // before the proxy relayed them): count how this side ends.
            do {
                let request = try connection.receive(exactly: 1)
                if request == [1] {
                    // Backend resets right after its bytes.
                    try connection.send(Array(repeating: 7, count: 3000))
                    connection.reset()
                    return
                }
                _ = try connection.receiveToEnd()
            } catch let error as TestSocket.SocketError where error.code == ECONNRESET {
                var marker = Checksum()
                marker.add([1])
                backendSawReset.set(marker)
            }
        }
        try await withProxy(backends: [backend.port]) { (_, port) async throws in
            for round in 0..<30 {
                let client = try TestSocket.connect(port: port)
                try client.send([1])
                let (count, ending) = client.receiveUntilEnd()
                client.close()
                #expect(ending == "reset", "round \(round): \(ending) after \(count) bytes")
            }
            for round in 0..<30 {
                let client = try TestSocket.connect(port: port)
                try client.send([2] + Array(repeating: 9, count: 3000))
                client.reset()
                #expect(await eventually { backendSawReset.value != nil }, "round \(round): the backend saw a clean end")
                backendSawReset.clear()
            }
        }
    }

    /// A client that resets: the backend sees a reset too.
    @Test func aClientResetReachesTheBackendAsAnError() async throws {
        let outcome = Checksum.Box()
        let backend = try TestServer { connection in
            try connection.send("ready")
            do {
                _ = try connection.receiveToEnd()
                outcome.set(Checksum())  // a clean end: wrong
            } catch let error as TestSocket.SocketError where error.code == ECONNRESET {
                var marker = Checksum()
                marker.add([1])
                outcome.set(marker)
            }
        }
        try await withProxy(backends: [backend.port]) { (_, port) async throws in
            let client = try TestSocket.connect(port: port)
            #expect(try client.receiveString(exactly: 5) == "ready")
            client.reset()
            #expect(await eventually { outcome.value != nil })
            #expect(outcome.value?.count == 1, "the backend saw a clean end of stream")
        }
    }
}

extension Checksum {
    /// A checksum handed from a server thread to the test.
    final class Box: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Checksum?
        func set(_ value: Checksum) { lock.withLock { stored = value } }
        func clear() { lock.withLock { stored = nil } }
        var value: Checksum? { lock.withLock { stored } }
    }
}
