#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Relaying: bytes read into the loop's scratch buffer are written straight to the other
/// socket; only what that socket cannot take now is kept (one pooled block), and the source
/// is not read again until it is gone (backpressure). An end of stream is passed on with
/// shutdown(SHUT_WR) once everything before it is written, so each direction ends on its
/// own (half-close). An error on one side resets the other, so a broken transfer never looks
/// like a clean end. Both sockets are closed exactly once, in `end`.
extension DataLoop {
    func clientEvent(_ session: Session, _ events: UInt32) {
        switch session.phase {
        case .relaying:
            Self.note(events, in: &session.client)
            service(session)
            failOnPendingError(session, events, .client)
        case .closed:
            return
        case .resolving, .connecting, .greeting, .queued:
            // Not relaying yet: remember what the client did; its bytes wait in the kernel.
            // An error or hang-up means it reset or went away: stop trying for it, and reset
            // a backend connection already made, as the relay would have.
            if events & (Epoll.error | Epoll.hangUp) != 0 {
                if debug {
                    context.logger.debug(
                        "client \(session.clientAddress) went away before a backend connected",
                        metadata: ["client": "\(session.clientAddress)"])
                }
                let error = SocketCalls.pendingError(session.clientFD)
                fail(session, on: .client, error == 0 ? ECONNRESET : error)
                return
            }
            Self.note(events, in: &session.client)
        }
    }

    func backendEvent(_ session: Session, _ events: UInt32) {
        switch session.phase {
        case .relaying:
            Self.note(events, in: &session.backendSide)
            service(session)
            failOnPendingError(session, events, .backend)
        case .connecting, .greeting:
            backendSetUpEvent(session, events)
        case .resolving, .queued, .closed:
            return
        }
    }

    /// After an error event: what the peer sent before its reset has been relayed (reads
    /// return it first), and if no read or write met the error since, it ends the relay now.
    private func failOnPendingError(_ session: Session, _ events: UInt32, _ side: Session.Side) {
        guard events & Epoll.error != 0, session.phase == .relaying else { return }
        let error = SocketCalls.pendingError(side == .client ? session.clientFD : session.backendFD)
        if error != 0 { fail(session, on: side, error) }
    }

    /// Remembers readiness until it is used up. An error or hang-up makes the socket
    /// "ready" both ways, so that the next read or write reports what happened.
    private static func note(_ events: UInt32, in readiness: inout Session.Readiness) {
        if events & (Epoll.readable | Epoll.peerHalfClosed | Epoll.hangUp | Epoll.error) != 0 { readiness.readable = true }
        // A reset sets RDHUP and HUP too: then a short read does not mean a clean end, and
        // the error is picked up after the reads (`failOnPendingError`).
        if events & (Epoll.peerHalfClosed | Epoll.hangUp) != 0 && events & Epoll.error == 0 { readiness.peerEnded = true }
        if events & (Epoll.writable | Epoll.hangUp | Epoll.error) != 0 { readiness.writable = true }
    }

    /// The backend is connected (and its greeting, if gated, was good): relay from now on.
    func startRelay(_ session: Session, greeting: [UInt8] = []) {
        guard let backend = session.backend else { return }
        session.phase = .relaying
        session.relayStarted = now
        let counters = backend.counters.slots[index]
        counters.connectionsTotal.addFromOwner(1)
        counters.activeConnections.addFromOwner(1)
        if debug {
            context.logger.debug(
                "connection \(session.clientAddress) via \(backend)",
                metadata: ["client": "\(session.clientAddress)", "backend": "\(backend)", "event": "connection_open"])
        }
        if !greeting.isEmpty {
            // What the gate held back goes first, and counts as relayed.
            session.bytesToClient += greeting.count
            counters.bytesToClient.addFromOwner(greeting.count)
            greeting.withUnsafeBytes { bytes in
                switch SocketCalls.write(session.clientFD, from: bytes) {
                case .transferred(let written) where written < bytes.count:
                    session.client.writable = false
                    session.down.held.hold(UnsafeRawBufferPointer(rebasing: bytes[written...]), pool: pool)
                case .wouldBlock:
                    session.client.writable = false
                    session.down.held.hold(bytes, pool: pool)
                default:
                    break  // written, or an error the next write reports
                }
            }
        }
        session.lastActivity = now
        scheduleRelayDeadline(session)
        service(session)
    }

    /// The relay's next deadline: arming keepalive, or the idle timeout, whichever is first.
    private func scheduleRelayDeadline(_ session: Session) {
        var next = UInt64.max
        if context.settings.keepalive != nil && !session.keepaliveArmed { next = session.relayStarted + LoopTime.nanoseconds(context.settings.keepaliveArmingDelay) }
        if let idle = context.settings.idleTimeout { next = min(next, session.lastActivity + LoopTime.nanoseconds(idle)) }
        if next != UInt64.max { timers.schedule(session, at: next) }
    }

    /// Moves what can move both ways, then ends the session if both streams are over.
    private func service(_ session: Session) {
        guard let backend = session.backend else { return }
        let counters = backend.counters.slots[index]
        let up = pump(
            &session.up, from: session.clientFD, &session.client, to: session.backendFD, &session.backendSide,
            otherDone: session.down.destinationShut)
        if up.moved > 0 {
            session.bytesFromClient += up.moved
            counters.bytesFromClient.addFromOwner(up.moved)
        }
        if let error = up.error {
            fail(session, on: error.towardsDestination ? .backend : .client, error.code)
            return
        }
        let down = pump(
            &session.down, from: session.backendFD, &session.backendSide, to: session.clientFD, &session.client,
            otherDone: session.up.destinationShut)
        if down.moved > 0 {
            session.bytesToClient += down.moved
            counters.bytesToClient.addFromOwner(down.moved)
        }
        if let error = down.error {
            fail(session, on: error.towardsDestination ? .client : .backend, error.code)
            return
        }
        if up.moved > 0 || down.moved > 0 { session.lastActivity = now }
        if session.up.destinationShut && session.down.destinationShut { finish(session) }
    }

    private struct PumpResult {
        var moved = 0
        /// An errno, and whether it came from writing to the destination (else reading the source).
        var error: (code: Int32, towardsDestination: Bool)?
    }

    /// Moves bytes from `source` to `destination` until one of them has to wait.
    /// - Parameter otherDone: the other direction has ended already, so once this one ends
    ///   too both sockets are closed, and the close itself ends the stream (no shutdown call).
    private func pump(
        _ flow: inout Session.Flow, from source: Int32, _ sourceReady: inout Session.Readiness,
        to destination: Int32, _ destinationReady: inout Session.Readiness, otherDone: Bool
    ) -> PumpResult {
        var result = PumpResult()
        while true {
            if flow.bulk {
                // Bulk: through a pipe, unless none can be had (then copy, as before).
                if splice(&flow, from: source, &sourceReady, to: destination, &destinationReady, otherDone: otherDone, &result) {
                    return result
                }
                flow.bulk = false
            }
            guard flushHeld(&flow, to: destination, &destinationReady, &result) else { return result }
            if flow.sourceEnded {
                endDirection(&flow, destination, otherDone: otherDone)
                return result
            }
            guard sourceReady.readable else { return result }
            switch SocketCalls.read(source, into: scratch.bytes) {
            case .transferred(let count):
                result.moved += count
                if count < scratch.bytes.count {
                    // A short read took everything there was: after an end of stream was
                    // seen, that is the end; otherwise wait for the next edge.
                    if sourceReady.peerEnded { flow.sourceEnded = true } else { sourceReady.readable = false }
                } else if context.settings.splice {
                    // A full buffer: more is coming; once these bytes are out, splice the rest.
                    flow.bulk = true
                }
                let bytes = UnsafeRawBufferPointer(rebasing: scratch.bytes[0..<count])
                guard destinationReady.writable else {
                    flow.held.hold(bytes, pool: pool)
                    return result
                }
                switch SocketCalls.write(destination, from: bytes) {
                case .transferred(let written):
                    if written < count {
                        destinationReady.writable = false
                        flow.held.hold(UnsafeRawBufferPointer(rebasing: bytes[written...]), pool: pool)
                        return result
                    }
                case .wouldBlock:
                    destinationReady.writable = false
                    flow.held.hold(bytes, pool: pool)
                    return result
                case .failed(let code):
                    result.error = (code, true)
                    return result
                case .endOfStream:
                    return result
                }
            case .endOfStream:
                sourceReady.readable = false
                flow.sourceEnded = true
            case .wouldBlock:
                sourceReady.readable = false
                return result
            case .failed(let code):
                result.error = (code, false)
                return result
            }
        }
    }

    /// The bulk half of `pump`: bytes held in user space go first, then the source is spliced
    /// into the flow's pipe and the pipe on to the destination, until one of them has to wait.
    /// The pipe goes back to the loop's pool whenever it is empty and the source has nothing
    /// more, so an idle connection holds none. Returns false, having moved nothing, when no
    /// pipe can be had: the caller copies instead.
    private func splice(
        _ flow: inout Session.Flow, from source: Int32, _ sourceReady: inout Session.Readiness,
        to destination: Int32, _ destinationReady: inout Session.Readiness, otherDone: Bool,
        _ result: inout PumpResult
    ) -> Bool {
        while true {
            // Left from the copy before the switch: it goes first.
            guard flushHeld(&flow, to: destination, &destinationReady, &result) else { return true }
            if let pipe = flow.pipe, flow.piped > 0 {
                guard destinationReady.writable else { return true }
                switch SocketCalls.splice(from: pipe.readFD, to: destination, count: flow.piped) {
                case .transferred(let moved):
                    flow.piped -= moved
                    if flow.piped > 0 {
                        destinationReady.writable = false
                        return true
                    }
                case .wouldBlock:
                    destinationReady.writable = false
                    return true
                case .failed(let code):
                    result.error = (code, true)
                    return true
                case .endOfStream:
                    return true
                }
            }
            if flow.sourceEnded {
                returnPipe(&flow)
                endDirection(&flow, destination, otherDone: otherDone)
                return true
            }
            guard sourceReady.readable else {
                returnPipe(&flow)
                return true
            }
            if flow.pipe == nil {
                guard let pipe = pipes.take() else { return false }
                flow.pipe = pipe
            }
            // The pipe is empty here, so EAGAIN can only mean the socket has nothing more.
            // A short splice does not mean it is drained (a pipe takes a bounded number of
            // packets): splice again until EAGAIN.
            switch SocketCalls.splice(from: source, to: flow.pipe!.writeFD, count: PipePool.capacity) {
            case .transferred(let moved):
                result.moved += moved
                slot.splicedBytes.addFromOwner(moved)
                flow.piped = moved
            case .endOfStream:
                sourceReady.readable = false
                flow.sourceEnded = true
            case .wouldBlock:
                sourceReady.readable = false
                returnPipe(&flow)
                return true
            case .failed(let code):
                result.error = (code, false)
                return true
            }
        }
    }

    /// Writes what the flow holds in user space. True once nothing is held; false when the
    /// destination has to wait, or failed (then `result.error` says how).
    private func flushHeld(
        _ flow: inout Session.Flow, to destination: Int32, _ destinationReady: inout Session.Readiness, _ result: inout PumpResult
    ) -> Bool {
        guard !flow.held.isEmpty else { return true }
        guard destinationReady.writable else { return false }
        switch flow.held.flush(to: destination, pool: pool) {
        case .transferred:
            if flow.held.isEmpty { return true }
            destinationReady.writable = false
        case .wouldBlock:
            destinationReady.writable = false
        case .failed(let code):
            result.error = (code, true)
        case .endOfStream:
            break
        }
        return false
    }

    /// Gives the flow's pipe back to the pool if it is empty.
    private func returnPipe(_ flow: inout Session.Flow) {
        guard let pipe = flow.pipe, flow.piped == 0 else { return }
        flow.pipe = nil
        pipes.give(pipe)
    }

    /// The source ended and everything before the end is written: pass the end on, once.
    private func endDirection(_ flow: inout Session.Flow, _ destination: Int32, otherDone: Bool) {
        guard !flow.destinationShut else { return }
        flow.destinationShut = true
        if !otherDone { SocketCalls.shutdownOutput(destination) }
    }

    /// A relay's deadline: arm keepalive once it has run a while; close it if nothing moved
    /// for the idle timeout.
    func relayDeadlinePassed(_ session: Session) {
        if let keepalive = context.settings.keepalive, !session.keepaliveArmed,
            now &- session.relayStarted >= LoopTime.nanoseconds(context.settings.keepaliveArmingDelay)
        {
            session.keepaliveArmed = true
            SocketCalls.setKeepalive(session.backendFD, keepalive)
        }
        guard let idle = context.settings.idleTimeout, now &- session.lastActivity >= LoopTime.nanoseconds(idle) else {
            scheduleRelayDeadline(session)
            return
        }
        if debug {
            context.logger.debug(
                "closing connection \(session.clientAddress): idle for \(GoDuration.format(idle))",
                metadata: ["client": "\(session.clientAddress)", "event": "idle_timeout"])
        }
        finish(session)
    }

    /// An error on `side`: the other side is reset, so its peer sees an error, not an end.
    func fail(_ session: Session, on side: Session.Side, _ code: Int32) {
        session.failure = (side, ConnectFailure.errnoText(code))
        let (failed, other) = side == .client ? (session.clientFD, session.backendFD) : (session.backendFD, session.clientFD)
        if other >= 0 { SocketCalls.resetAndClose(other) }
        SocketCalls.close(failed)
        end(session)
    }

    /// Closes both sockets (a normal close) and ends the session.
    func finish(_ session: Session) {
        guard session.phase != .closed else { return }
        SocketCalls.close(session.clientFD)
        if session.backendFD >= 0 { SocketCalls.close(session.backendFD) }
        end(session)
    }

    /// A pipe still in use when its session ends: pooled if empty, else closed with its bytes.
    private func releasePipe(_ flow: inout Session.Flow) {
        guard let pipe = flow.pipe else { return }
        flow.pipe = nil
        if flow.piped == 0 { pipes.give(pipe) } else { pipes.discard(pipe) }
        flow.piped = 0
    }

    /// The sockets are closed: forget the session and count it out.
    private func end(_ session: Session) {
        let wasRelaying = session.phase == .relaying
        session.phase = .closed
        unregister(session.clientFD)
        unregister(session.backendFD)
        timers.cancel(session)
        session.up.held.release(to: pool)
        session.down.held.release(to: pool)
        releasePipe(&session.up)
        releasePipe(&session.down)
        if let backend = session.backend { backend.counters.slots[index].assignedConnections.addFromOwner(-1) }
        if wasRelaying, let backend = session.backend {
            backend.counters.slots[index].activeConnections.addFromOwner(-1)
            if debug {
                let ending = session.failure.map { "\($0.side) error: \($0.reason)" } ?? "closed"
                let elapsed = GoDuration.formatApproximately(.nanoseconds(Int64(now &- session.started)))
                context.logger.debug(
                    "connection \(session.clientAddress) via \(backend) ended after \(elapsed): \(session.bytesFromClient) bytes from client, \(session.bytesToClient) bytes to client, \(ending)",
                    metadata: ["client": "\(session.clientAddress)", "backend": "\(backend)", "event": "connection_closed"])
            }
        }
        connectionClosed()
    }
}
