import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A network namespace with a veth link to this one: a test host at `remoteAddress` that this
/// host reaches from `localAddress`, like a database server on another machine. The namespace
/// gets its own /etc/hosts (through /etc/netns/NAME/hosts), so a server in it can resolve the
/// proxy's address. Everything is removed by `remove()`.
public final class TestNetwork: @unchecked Sendable {
    public let name: String
    public let localAddress: String
    public let remoteAddress: String
    private let link: String

    public static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }

    public init() throws {
        let tag = String(UInt32.random(in: 0..<0xFFFFF), radix: 16)
        name = "tf-test-\(tag)"
        link = "tf\(tag)"
        let subnet = Int.random(in: 0..<64) * 4
        localAddress = "10.231.\(Int.random(in: 0...255)).\(subnet + 1)"
        remoteAddress = localAddress.split(separator: ".").dropLast().joined(separator: ".") + ".\(subnet + 2)"
        let steps: [[String]] = [
            ["netns", "add", name],
            ["link", "add", link + "a", "type", "veth", "peer", "name", link + "b"],
            ["link", "set", link + "b", "netns", name],
            ["addr", "add", localAddress + "/30", "dev", link + "a"],
            ["link", "set", link + "a", "up"],
            ["netns", "exec", name, "ip", "addr", "add", remoteAddress + "/30", "dev", link + "b"],
            ["netns", "exec", name, "ip", "link", "set", link + "b", "up"],
            ["netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ]
        for step in steps {
            let (status, output) = try runProcess("/usr/sbin/ip", step)
            guard status == 0 else {
                remove()
                throw ProxyProcess.ProcessError(message: "ip \(step.joined(separator: " ")): \(output)")
            }
        }
        try FileManager.default.createDirectory(atPath: "/etc/netns/\(name)", withIntermediateDirectories: true)
        try "127.0.0.1 localhost\n\(localAddress) proxy-host\n\(remoteAddress) db-host\n"
            .write(toFile: "/etc/netns/\(name)/hosts", atomically: true, encoding: .utf8)
    }

    deinit { remove() }

    /// Gives this host one more address, `address`, reachable from the namespace over the
    /// link: a second "machine" that `block` can cut from the namespace alone.
    public func addLocalAddress(_ address: String) throws {
        for step in [["addr", "add", address + "/32", "dev", link + "a"], ["netns", "exec", name, "ip", "route", "add", address + "/32", "dev", link + "b"]] {
            let (status, output) = try runProcess("/usr/sbin/ip", step)
            guard status == 0 else { throw ProxyProcess.ProcessError(message: "ip \(step.joined(separator: " ")): \(output)") }
        }
    }

    /// Makes `address` unreachable from the namespace (connections fail at once), or, with
    /// `blocked: false`, reachable again.
    public func block(_ address: String, _ blocked: Bool = true) throws {
        let step = blocked
            ? ["netns", "exec", name, "ip", "route", "replace", "prohibit", address + "/32"]
            : ["netns", "exec", name, "ip", "route", "replace", address + "/32", "dev", link + "b"]
        let (status, output) = try runProcess("/usr/sbin/ip", step)
        guard status == 0 else { throw ProxyProcess.ProcessError(message: "ip \(step.joined(separator: " ")): \(output)") }
    }

    public func remove() {
        _ = try? runProcess("/usr/sbin/ip", ["link", "del", link + "a"])
        _ = try? runProcess("/usr/sbin/ip", ["netns", "del", name])
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(name)")
    }
}
