import CDataPath
import Dispatch
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One data-path thread: its own epoll set, its own listening sockets, the connections it
/// accepted (a connection lives its whole life on one loop), their deadlines, a scratch
/// buffer and a pool of blocks. Other threads reach it only through `mailbox`.
///
/// Each socket is added to epoll once, edge-triggered, and never modified; it leaves the
/// set when it is closed. Listeners are the exception: they leave and come back while
/// accepting is paused (out of descriptors, or at `-maxconn`).
///
/// `@unchecked Sendable`: the loop is handed to its thread once; everything but `index`,
/// `mailbox` and `context` is used only on that thread, inside `run()`.
final class DataLoop: @unchecked Sendable {
    let index: Int
    let mailbox: LoopMailbox
    let context: DataLoopContext

    // MARK: State of the loop's thread

    let epoll: Epoll
    /// Sessions by descriptor: each session is here under its client and its backend socket.
    var sessions: ContiguousArray<Session?> = []
    var timers = TimerQueue()
    /// Loop time, read once per wake-up.
    var now: UInt64
    let scratch: ScratchBuffer
    let pool = BlockPool()
    let pipes = PipePool()
    /// New clients so far: round-robin balancing takes turns by it.
    var clientsServed = 0
    let slot: ProxyCounters.Slot
    /// Whether debug lines are logged: checked before any text is built.
    let debug: Bool
    private var nextToken: UInt32 = Key.firstSessionToken
    private var listeners: [Listener]
    /// Accepting is paused until this loop time (0: not paused).
    private var acceptResumesAt: UInt64 = 0
    private var acceptErrorLog = LogThrottle()
    private var limitLog = LogThrottle()
    /// Clients refused by a decision (split brain, no writer): a line a second, not one each.
    var refusalLog = LogThrottle()
    private var running = true
    private var onStop: (@Sendable () -> Void)?

    struct Listener {
        let fd: Int32
        /// Served by every loop (a socket from systemd): registered with EPOLLEXCLUSIVE, and
        /// not closed by the loop.
        let shared: Bool
        var registered = false
    }

    /// Epoll keys: the descriptor in the low 32 bits, a token in the high 32. Tokens 0 and 1
    /// mark the wake signal and listeners; each session socket registration gets a new one,
    /// so an event for a socket closed earlier in the same batch (its number may be reused
    /// at once) is recognised as stale.
    enum Key {
        static let wakeToken: UInt32 = 0
        static let listenerToken: UInt32 = 1
        static let firstSessionToken: UInt32 = 2

        static func make(_ fd: Int32, _ token: UInt32) -> UInt64 { UInt64(token) << 32 | UInt64(UInt32(bitPattern: fd)) }
    }

    /// - Parameter listeners: listening sockets, with whether each is shared by every loop.
    init(index: Int, listeners: [(fd: Int32, shared: Bool)], context: DataLoopContext) throws(SocketError) {
        self.index = index
        self.context = context
        self.slot = context.counters.slots[index]
        self.debug = context.logger.logLevel <= .debug
        self.now = LoopTime.now()
        self.mailbox = try LoopMailbox()
        self.epoll = try Epoll()
        self.scratch = ScratchBuffer()
        self.listeners = listeners.map { Listener(fd: $0.fd, shared: $0.shared) }
        let error = epoll.add(mailbox.wake.fd, events: Epoll.listenerEvents, key: Key.make(mailbox.wake.fd, Key.wakeToken))
        if error != 0 {
            epoll.close()
            scratch.deallocate()
            throw SocketError(errno: error, operation: "epoll_ctl")
        }
        registerListeners()
    }

    deinit {
        scratch.deallocate()
    }

    // MARK: The loop

    /// Serves until a `stop` command; runs on the loop's own thread.
    func run() {
        let events = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: 256)
        defer { events.deallocate() }
        while running {
            let count = epoll.wait(into: events, timeout: waitTimeout())
            now = LoopTime.now()
            for event in events[0..<count] {
                dispatch(key: event.data.u64, events: event.events)
            }
            fireTimers()
            if acceptResumesAt != 0 && now >= acceptResumesAt { resumeAccepting() }
        }
        tearDown()
    }

    /// Milliseconds until the next deadline, rounded up; -1 when there is none.
    private func waitTimeout() -> Int32 {
        var next = timers.nextDeadline ?? UInt64.max
        if acceptResumesAt != 0 { next = min(next, acceptResumesAt) }
        guard next != UInt64.max else { return -1 }
        let current = LoopTime.now()
        guard next > current else { return 0 }
        return Int32(min((next - current + 999_999) / 1_000_000, 60_000))
    }

    private func dispatch(key: UInt64, events: UInt32) {
        let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: key))
        let token = UInt32(truncatingIfNeeded: key >> 32)
        switch token {
        case Key.wakeToken:
            for command in mailbox.takeAll() { perform(command) }
        case Key.listenerToken:
            acceptAll(from: fd)
        default:
            guard fd < sessions.count, let session = sessions[Int(fd)] else { return }
            if fd == session.clientFD && token == session.clientToken {
                clientEvent(session, events)
            } else if fd == session.backendFD && token == session.backendToken {
                backendEvent(session, events)
            }
        }
    }

    private func fireTimers() {
        while let session = timers.popExpired(now: now) {
            deadlinePassed(session)
        }
    }

    // MARK: Sockets of sessions

    func makeToken() -> UInt32 {
        let token = nextToken
        nextToken = nextToken == UInt32.max ? Key.firstSessionToken : nextToken + 1
        return token
    }

    /// Puts `fd` in the table and in epoll; returns 0 or errno (then it is in neither).
    func register(_ fd: Int32, token: UInt32, for session: Session) -> Int32 {
        let slot = Int(fd)
        if slot >= sessions.count {
            sessions.append(contentsOf: repeatElement(nil, count: max(slot + 1, sessions.count * 2, 64) - sessions.count))
        }
        let error = epoll.add(fd, events: Epoll.streamEvents, key: Key.make(fd, token))
        if error == 0 { sessions[slot] = session }
        return error
    }

    /// Takes `fd` out of the table; the caller closes it (which takes it out of epoll).
    func unregister(_ fd: Int32) {
        if fd >= 0 && Int(fd) < sessions.count { sessions[Int(fd)] = nil }
    }

    // MARK: Accepting

    private func registerListeners() {
        for index in listeners.indices where !listeners[index].registered {
            let listener = listeners[index]
            let events = listener.shared ? Epoll.sharedListenerEvents : Epoll.listenerEvents
            if epoll.add(listener.fd, events: events, key: Key.make(listener.fd, Key.listenerToken)) == 0 {
                listeners[index].registered = true
            }
        }
    }

    /// Accepts until the kernel has no more (edge-triggered), the limit is reached, or
    /// descriptors run out.
    private func acceptAll(from listener: Int32) {
        while running && acceptResumesAt == 0 {
            if let limit = context.limit, !limit.reserve() {
                pauseAccepting()
                slot.maxConnectionsReached.addFromOwner(1)
                if limitLog.allows(now: now) {
                    context.logger.warning(
                        "\(limit.maximum) client connections are open (-maxconn): not accepting more until some close; new clients wait in the listen backlog\(limitLog.suppressedText)",
                        metadata: ["event": "maxconn"])
                }
                return
            }
            switch SocketCalls.accept(listener) {
            case .success(let (fd, address)):
                startSession(clientFD: fd, address: address)
            case .failure(let error):
                context.limit?.release()
                switch error.errno {
                case EAGAIN, EWOULDBLOCK:
                    return
                case EINTR, ECONNABORTED, EPROTO, EPERM:
                    continue  // that client gave up, or a firewall refused it: take the next
                default:
                    outOfResources(ConnectFailure.errnoText(error.errno))
                    return
                }
            }
        }
    }

    /// Out of descriptors or memory: back off instead of spinning on the connection the
    /// kernel keeps offering, and say so at most once a second; nothing is marked down.
    func outOfResources(_ reason: String) {
        slot.acceptErrors.addFromOwner(1)
        if acceptErrorLog.allows(now: now) {
            context.logger.error(
                "accept failed: \(reason); backing off\(acceptErrorLog.suppressedText)",
                metadata: ["event": "accept_error"])
        }
        pauseAccepting()
    }

    /// Takes the listeners out of epoll for a while: their queued connections would
    /// otherwise wake the loop again and again (shared ones are level-triggered).
    private func pauseAccepting() {
        for index in listeners.indices where listeners[index].registered {
            epoll.remove(listeners[index].fd)
            listeners[index].registered = false
        }
        acceptResumesAt = now + 100_000_000
    }

    /// Puts the listeners back; connections that queued meanwhile are reported at once.
    func resumeAccepting() {
        guard acceptResumesAt != 0 else { return }
        if let limit = context.limit, !limit.hasRoom {
            acceptResumesAt = now + 100_000_000
            return
        }
        acceptResumesAt = 0
        registerListeners()
    }

    /// A session ended: if accepting waits for room under `-maxconn`, there may be some now.
    func connectionClosed() {
        slot.openClientConnections.addFromOwner(-1)
        if let limit = context.limit {
            limit.release()
            if acceptResumesAt != 0 { resumeAccepting() }
        }
    }

    private func stopAccepting() {
        for listener in listeners {
            if listener.registered { epoll.remove(listener.fd) }
            if !listener.shared { SocketCalls.close(listener.fd) }
        }
        listeners = []
        acceptResumesAt = 0
    }

    // MARK: Commands

    private func perform(_ command: LoopCommand) {
        switch command {
        case .closeSessions(let backendID):
            forEachSession { session in
                if session.phase == .relaying && session.backend?.id == backendID { finish(session) }
            }
        case .stopAccepting(let done):
            stopAccepting()
            done()
        case .stop(let done):
            onStop = done
            running = false
        case .run(let work):
            work()
        case .resolved(let clientFD, let token, let result):
            guard clientFD < sessions.count, let session = sessions[Int(clientFD)], session.clientFD == clientFD,
                session.clientToken == token, session.phase == .resolving
            else { return }
            resolved(session, result)
        }
    }

    /// Calls `body` once for each open session (each is in the table twice).
    private func forEachSession(_ body: (Session) -> Void) {
        for fd in sessions.indices {
            if let session = sessions[fd], session.clientFD == fd { body(session) }
        }
    }

    private func tearDown() {
        stopAccepting()
        forEachSession { finish($0) }
        epoll.close()
        onStop?()
    }

    /// Resolves `host` off the loop (getaddrinfo blocks) and answers through the mailbox.
    func resolve(_ endpoint: Endpoint, for session: Session) {
        let (mailbox, clientFD, token) = (self.mailbox, session.clientFD, session.clientToken)
        DispatchQueue.global().async {
            mailbox.post(.resolved(clientFD: clientFD, token: token, HostResolver.resolve(host: endpoint.host, port: endpoint.port)))
        }
    }
}

/// At most one log line a second about a recurring condition, saying how many were left out.
struct LogThrottle {
    private var last: UInt64 = 0
    private var suppressed = 0
    private var reported = 0

    /// Whether to log now; counts what it refuses.
    mutating func allows(now: UInt64) -> Bool {
        if last != 0 && now &- last < 1_000_000_000 {
            suppressed += 1
            return false
        }
        last = now
        reported = suppressed
        suppressed = 0
        return true
    }

    /// ` (N more since the last report)`, or nothing.
    var suppressedText: String { reported > 0 ? " (\(reported) more since the last report)" : "" }
}
