import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Taking an accepted client to the first backend that connects: backends that are up by
/// preference, then those marked down as a last resort (the registry's snapshot gives the
/// order). A failed attempt marks its backend down and moves on within the same client
/// connection, so the client does not notice. Nothing is read from the client before a
/// backend is there to take it: its bytes wait in the kernel, and its end of stream is
/// remembered.
extension DataLoop {
    func startSession(clientFD: Int32, address: PeerAddress) {
        slot.acceptedConnections.addFromOwner(1)
        slot.openClientConnections.addFromOwner(1)
        let session = Session(clientFD: clientFD, token: makeToken(), address: address, now: now)
        let error = register(clientFD, token: session.clientToken, for: session)
        guard error == 0 else {
            context.logger.error(
                "cannot serve \(address): \(ConnectFailure.errnoText(error)) (epoll)", metadata: ["client": "\(address)"])
            SocketCalls.close(clientFD)
            session.phase = .closed
            connectionClosed()
            return
        }
        clientsServed &+= 1
        session.candidates = context.registry.snapshot.connectOrder(balance: context.settings.balance, turn: clientsServed)
        tryNextBackend(session)
    }

    /// The backend the session tries or relays to, counted in its `assignedConnections` from
    /// the moment it is chosen until the session ends or moves on.
    func assign(_ session: Session, to backend: Backend?) {
        if let previous = session.backend { previous.counters.slots[index].assignedConnections.addFromOwner(-1) }
        if let backend { backend.counters.slots[index].assignedConnections.addFromOwner(1) }
        session.backend = backend
    }

    /// Starts an attempt on the first candidate, or queues or closes the client when none is left.
    func tryNextBackend(_ session: Session) {
        guard let backend = session.candidates.first else {
            noBackendLeft(session)
            return
        }
        assign(session, to: backend)
        if let address = backend.numericAddress {
            session.addresses = []
            connect(session, to: address)
        } else {
            session.phase = .resolving
            timers.schedule(session, at: now + LoopTime.nanoseconds(context.settings.connectTimeout))
            resolve(backend.endpoint, for: session)
        }
    }

    /// The host name of the current backend resolved (or not).
    func resolved(_ session: Session, _ result: Result<[SocketAddress], HostResolver.Failure>) {
        switch result {
        case .success(let addresses):
            session.addresses = addresses.dropFirst()[...]
            connect(session, to: addresses[0])
        case .failure(let failure):
            timers.cancel(session)
            attemptFailed(session, failure)
        }
    }

    private func connect(_ session: Session, to address: SocketAddress) {
        let fd: Int32
        switch SocketCalls.openStream(family: Int32(address.protocol.rawValue)) {
        case .success(let opened): fd = opened
        case .failure(let error):
            attemptFailed(session, error)
            return
        }
        SocketCalls.setNoDelay(fd)
        let result = SocketCalls.connect(fd, to: address)
        guard result == 0 || result == EINPROGRESS else {
            SocketCalls.close(fd)
            attemptFailed(session, SocketError(errno: result, operation: "connect"))
            return
        }
        let token = makeToken()
        let error = register(fd, token: token, for: session)
        guard error == 0 else {
            SocketCalls.close(fd)
            attemptFailed(session, SocketError(errno: error, operation: "epoll_ctl"))
            return
        }
        session.backendFD = fd
        session.backendToken = token
        session.backendSide = Session.Readiness()
        session.phase = .connecting
        // Connected at once or not, epoll reports the socket writable (or failed) next.
        timers.schedule(session, at: now + LoopTime.nanoseconds(context.settings.connectTimeout))
    }

    /// Readiness of the backend socket while connecting or waiting for its greeting.
    func backendSetUpEvent(_ session: Session, _ events: UInt32) {
        if session.phase == .connecting {
            if events & (Epoll.error | Epoll.hangUp) != 0 {
                let error = SocketCalls.pendingError(session.backendFD)
                closeAttempt(session)
                attemptFailed(session, SocketError(errno: error == 0 ? ECONNREFUSED : error, operation: "connect"))
                return
            }
            guard events & Epoll.writable != 0 else { return }
            session.backendSide.writable = true
            if events & (Epoll.readable | Epoll.peerHalfClosed) != 0 { session.backendSide.readable = true }
            if events & Epoll.peerHalfClosed != 0 && events & Epoll.error == 0 { session.backendSide.peerEnded = true }
            connected(session)
            return
        }
        // The greeting gate.
        if events & Epoll.writable != 0 { session.backendSide.writable = true }
        if events & (Epoll.readable | Epoll.peerHalfClosed | Epoll.hangUp | Epoll.error) != 0 { session.backendSide.readable = true }
        if events & Epoll.peerHalfClosed != 0 && events & Epoll.error == 0 { session.backendSide.peerEnded = true }
        readGreeting(session)
    }

    private func connected(_ session: Session) {
        timers.cancel(session)
        guard let backend = session.backend else { return }
        context.registry.reportConnectSuccess(backend)
        if let version = context.settings.sendProxy {
            // First on the wire, before the client's bytes (or the greeting gate's wait).
            let header = ProxyProtocolHeader.make(
                version, source: session.clientAddress, destination: SocketCalls.localAddress(session.clientFD))
            header.withUnsafeBytes { bytes in
                switch SocketCalls.write(session.backendFD, from: bytes) {
                case .transferred(let written) where written < bytes.count:
                    session.up.held.hold(UnsafeRawBufferPointer(rebasing: bytes[written...]), pool: pool)
                case .wouldBlock:
                    session.up.held.hold(bytes, pool: pool)
                default:
                    break  // all written, or an error the relay finds on its next write
                }
            }
        }
        guard let gate = context.settings.greetingGate else {
            startRelay(session)
            return
        }
        session.phase = .greeting
        session.greeting = []
        timers.schedule(session, at: now + LoopTime.nanoseconds(gate.timeout))
        if session.backendSide.readable { readGreeting(session) }
    }

    /// Reads the backend's first bytes until the gate can judge them.
    private func readGreeting(_ session: Session) {
        guard let gate = context.settings.greetingGate, session.backendSide.readable else { return }
        while true {
            switch SocketCalls.read(session.backendFD, into: scratch.bytes) {
            case .transferred(let count):
                session.greeting += scratch.bytes[0..<count]
                if session.greeting.count > BlockPool.blockSize {
                    closeAttempt(session)
                    attemptFailed(session, GreetingGate.Failure(reason: "more than \(BlockPool.blockSize) bytes and still incomplete"))
                    return
                }
                guard gate.isComplete(session.greeting) else { continue }
                timers.cancel(session)
                do {
                    try gate.judge(session.greeting)
                } catch {
                    closeAttempt(session)
                    attemptFailed(session, GreetingGate.Failure(reason: "\(error)"))
                    return
                }
                let greeting = session.greeting
                session.greeting = []
                startRelay(session, greeting: greeting)
                return
            case .wouldBlock:
                session.backendSide.readable = false
                return
            case .endOfStream:
                closeAttempt(session)
                let count = session.greeting.count
                attemptFailed(session, GreetingGate.Failure(reason: count == 0 ? "closed without a word" : "closed after \(count) bytes"))
                return
            case .failed(let error):
                closeAttempt(session)
                attemptFailed(session, SocketError(errno: error, operation: "read"))
                return
            }
        }
    }

    /// The session's deadline passed.
    func deadlinePassed(_ session: Session) {
        switch session.phase {
        case .resolving, .connecting:
            closeAttempt(session)
            attemptFailed(session, ConnectTimeout(limit: context.settings.connectTimeout))
        case .greeting:
            closeAttempt(session)
            let limit = context.settings.greetingGate.map { GoDuration.formatApproximately($0.timeout) } ?? "?"
            attemptFailed(session, GreetingGate.Failure(reason: "nothing within \(limit)"))
        case .queued:
            retryQueued(session)
        case .relaying:
            relayDeadlinePassed(session)
        case .closed:
            break
        }
    }

    /// Closes the socket of a failed attempt; the session stays.
    private func closeAttempt(_ session: Session) {
        timers.cancel(session)
        guard session.backendFD >= 0 else { return }
        unregister(session.backendFD)
        SocketCalls.close(session.backendFD)
        session.backendFD = -1
        session.up.held.release(to: pool)
    }

    /// An attempt failed: another address of the same host, else the next backend.
    private func attemptFailed(_ session: Session, _ error: any Error) {
        guard let backend = session.backend else { return }
        if ConnectFailure.isLocalResourceError(error) {
            // Out of descriptors or memory here: no backend is at fault, none is marked down.
            // The client is turned away and accepting pauses, as when accept itself fails.
            finish(session)
            outOfResources("\(ConnectFailure.describe(error)) (no descriptor left for a backend connection)")
            return
        }
        if let next = session.addresses.popFirst(), !(error is ConnectTimeout) {
            connect(session, to: next)
            return
        }
        context.registry.reportConnectFailure(backend, error: error)
        let reason = "\(backend): \(ConnectFailure.describe(error))"
        if session.candidates.count > 1 {
            slot.failovers.addFromOwner(1)
            context.logger.info(
                "failing over \(session.clientAddress) from \(reason)",
                metadata: ["client": "\(session.clientAddress)", "backend": "\(backend)", "event": "failover"])
        }
        session.failures.append(reason)
        session.candidates = session.candidates.dropFirst()
        tryNextBackend(session)
    }

    /// No candidate connected: wait for one to come back (`-queue-timeout`) or close the client.
    private func noBackendLeft(_ session: Session) {
        assign(session, to: nil)
        if let queueTimeout = context.settings.queueTimeout {
            if session.queueDeadline == 0 {
                session.queueDeadline = now + LoopTime.nanoseconds(queueTimeout)
                context.logger.info(
                    "no backend available for \(session.clientAddress); it waits up to \(GoDuration.format(queueTimeout)) for one",
                    metadata: ["client": "\(session.clientAddress)", "event": "queued"])
            }
            if now < session.queueDeadline {
                session.phase = .queued
                timers.schedule(session, at: min(now + 50_000_000, session.queueDeadline))
                return
            }
        }
        // Why: what the tries met, or why there was nothing to try. Refusals by decision (a
        // split brain, no writer) can hit every client for a while: one line a second.
        if session.failures.isEmpty, let refusal = context.registry.snapshot.refusalReason {
            if refusalLog.allows(now: now) {
                context.logger.error(
                    "no backend available for \(session.clientAddress), closing it: \(refusal)\(refusalLog.suppressedText)",
                    metadata: ["client": "\(session.clientAddress)", "event": "no_backend"])
            }
        } else {
            let why = session.failures.isEmpty ? "no backend is up" : session.failures.joined(separator: "; ")
            context.logger.error(
                "no backend available for \(session.clientAddress), closing it: \(why)",
                metadata: ["client": "\(session.clientAddress)", "event": "no_backend"])
        }
        finish(session)
    }

    /// Looks again (every 50ms) for a backend in rotation that is up.
    private func retryQueued(_ session: Session) {
        let snapshot = context.registry.snapshot
        session.candidates = snapshot.connectOrder(balance: context.settings.balance, turn: clientsServed).filter { snapshot.isUp($0) }[...]
        if session.candidates.isEmpty && now < session.queueDeadline {
            timers.schedule(session, at: min(now + 50_000_000, session.queueDeadline))
            return
        }
        tryNextBackend(session)
    }
}

/// A connection attempt that did not finish within the connect timeout.
struct ConnectTimeout: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "connect timed out after \(GoDuration.format(limit))" }
}
