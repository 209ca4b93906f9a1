// epoll-floor LISTEN-PORT BACKEND-PORT [THREADS]
//
// A TCP relay on 127.0.0.1 written straight on Linux epoll, as HAProxy is: per thread one
// SO_REUSEPORT listener and one epoll set; each socket is added once, edge-triggered, and never
// modified; a 16 KiB buffer per direction (reading stops while it is full: backpressure);
// end of stream forwarded with shutdown(SHUT_WR) once the buffer is drained; an error resets
// the other side. No failover, counters or logging: the floor for a data path without NIO.
import CEpoll
import Glibc

let arguments = CommandLine.arguments
guard arguments.count >= 3, let listenPort = UInt16(arguments[1]), let backendPort = UInt16(arguments[2]) else {
    print("usage: epoll-floor LISTEN-PORT BACKEND-PORT [THREADS]")
    exit(2)
}
let threadCount = arguments.count > 3 ? Int(arguments[3]) ?? 4 : 4

func loopbackAddress(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return address
}

func check(_ result: Int32, _ what: String) -> Int32 {
    if result < 0 {
        perror(what)
        exit(1)
    }
    return result
}

func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
    var value = value
    _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
}

/// One direction of a relay: bytes read from `source` wait in `buffer` until `destination` takes them.
struct Direction {
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    var start = 0
    var end = 0
    var sourceEnded = false
    var destinationShut = false
}

/// A client and its backend connection.
final class Relay {
    let client: Int32
    let backend: Int32
    var connected = false
    var up = Direction()  // client → backend
    var down = Direction()  // backend → client

    init(client: Int32, backend: Int32) {
        self.client = client
        self.backend = backend
    }

    /// Moves what can be moved in one direction; false on an error.
    func pump(_ direction: inout Direction, from source: Int32, to destination: Int32) -> Bool {
        while true {
            if direction.start < direction.end {
                let written = direction.buffer.withUnsafeBytes { bytes in
                    write(destination, bytes.baseAddress! + direction.start, direction.end - direction.start)
                }
                if written < 0 {
                    return errno == EAGAIN || errno == EINTR
                }
                direction.start += written
                if direction.start < direction.end { return true }
                direction.start = 0
                direction.end = 0
            }
            if direction.sourceEnded {
                if !direction.destinationShut {
                    direction.destinationShut = true
                    shutdown(destination, Int32(SHUT_WR))
                }
                return true
            }
            let count = direction.buffer.count
            let read = direction.buffer.withUnsafeMutableBytes { bytes in
                Glibc.read(source, bytes.baseAddress!, count)
            }
            if read > 0 {
                direction.end = read
            } else if read == 0 {
                direction.sourceEnded = true
            } else {
                return errno == EAGAIN || errno == EINTR
            }
        }
    }

    /// Handles readiness on either socket; returns true once the relay is over.
    func service(descriptor: Int32, events: UInt32) -> Bool {
        if !connected {
            // The connect has finished once the backend reports writable or an error; until
            // then client bytes wait in the kernel (the pump below reads them all).
            guard descriptor == backend, events & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 else {
                return false
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(backend, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                finish(reset: false)
                return true
            }
            connected = true
        }
        let upOK = pump(&up, from: client, to: backend)
        let downOK = pump(&down, from: backend, to: client)
        if !upOK || !downOK {
            finish(reset: true)
            return true
        }
        if up.destinationShut && down.destinationShut {
            finish(reset: false)
            return true
        }
        return false
    }

    /// Closes both sockets, resetting them after an error; the caller then forgets the relay.
    func finish(reset: Bool) {
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            setsockopt(backend, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        close(client)
        close(backend)
    }
}

/// One event loop: a listener of its own, an epoll set, and the relays it accepted.
func runLoop(listenPort: UInt16, backendPort: UInt16) {
    let listener = check(socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0), "socket")
    setOption(listener, SOL_SOCKET, SO_REUSEADDR, 1)
    setOption(listener, SOL_SOCKET, SO_REUSEPORT, 1)
    setOption(listener, Int32(IPPROTO_TCP), TCP_NODELAY, 1)  // accepted sockets inherit it
    var address = loopbackAddress(port: listenPort)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            check(bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)), "bind")
        }
    }
    _ = check(listen(listener, 4096), "listen")
    let epoll = check(epoll_create1(Int32(EPOLL_CLOEXEC)), "epoll_create1")
    var listenEvent = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: UInt64.max))
    _ = check(epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &listenEvent), "epoll_ctl")
    var backendAddress = loopbackAddress(port: backendPort)
    // Descriptors are unique in the process, so a table indexed by descriptor finds the relay.
    var relays = [Relay?](repeating: nil, count: 1 << 16)
    var events = [epoll_event](repeating: epoll_event(), count: 256)
    let interest = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue

    while true {
        let ready = epoll_wait(epoll, &events, Int32(events.count), -1)
        if ready < 0 { continue }
        for index in 0..<Int(ready) {
            let key = events[index].data.u64
            if key == UInt64.max {
                while true {
                    let client = cepoll_accept_nonblocking(listener)
                    if client < 0 { break }
                    let backend = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                    guard backend >= 0, backend < relays.count, client < relays.count else {
                        close(client)
                        if backend >= 0 { close(backend) }
                        continue
                    }
                    setOption(backend, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                    let result = withUnsafePointer(to: &backendAddress) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            connect(backend, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    }
                    if result < 0 && errno != EINPROGRESS {
                        close(client)
                        close(backend)
                        continue
                    }
                    let relay = Relay(client: client, backend: backend)
                    relays[Int(client)] = relay
                    relays[Int(backend)] = relay
                    var clientEvent = epoll_event(events: interest, data: epoll_data_t(u64: UInt64(client)))
                    var backendEvent = epoll_event(events: interest, data: epoll_data_t(u64: UInt64(backend)))
                    epoll_ctl(epoll, EPOLL_CTL_ADD, client, &clientEvent)
                    epoll_ctl(epoll, EPOLL_CTL_ADD, backend, &backendEvent)
                }
                continue
            }
            guard let relay = relays[Int(key)] else { continue }
            if relay.service(descriptor: Int32(key), events: events[index].events) {
                // close() took both descriptors out of the epoll set.
                relays[Int(relay.client)] = nil
                relays[Int(relay.backend)] = nil
            }
        }
    }
}

/// Starts a loop on a thread of its own. (Outside top-level code, whose closures would be
/// isolated to the main actor.) The two ports travel in the thread argument: a C thread
/// function captures nothing.
func startLoopThread(listenPort: UInt16, backendPort: UInt16) -> pthread_t {
    var thread = pthread_t()
    let ports = UnsafeMutableRawPointer(bitPattern: UInt(listenPort) << 16 | UInt(backendPort) | 1 << 40)
    pthread_create(&thread, nil, { argument in
        let value = UInt(bitPattern: argument)
        runLoop(listenPort: UInt16(truncatingIfNeeded: value >> 16), backendPort: UInt16(truncatingIfNeeded: value))
        return nil
    }, ports)
    return thread
}

// A write to a peer that has gone returns EPIPE instead of killing the process.
signal(SIGPIPE, SIG_IGN)
let threads = (0..<threadCount).map { _ in startLoopThread(listenPort: listenPort, backendPort: backendPort) }
for thread in threads { pthread_join(thread, nil) }
