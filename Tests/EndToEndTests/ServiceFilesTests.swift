import Foundation
import Testing
import TestSupport
import TCPFallback

/// What an operator installs: `make install-files`, the systemd units, the manual page.
@Suite struct ServiceFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func run(_ executable: String, _ arguments: [String], in directory: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Installs into a temporary root with `make install-files DESTDIR=...`.
    static func install(into destination: String, prefix: String = "/usr/local") throws -> (status: Int32, output: String) {
        try run("/usr/bin/make", [
            "-C", root.path, "install-files", "DESTDIR=\(destination)", "PREFIX=\(prefix)",
            "BINARY=\(ProxyProcess.binary.path)",
        ])
    }

    /// `make deb`'s script packages the binary it is given (here the debug build, compressed
    /// fast); dpkg installs the package into a scratch root of its own, and it runs from there.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-deb"), "dpkg-deb is not installed"))
    func theDebianPackageInstallsIntoAScratchRootAndRuns() throws {
        let directory = try TemporaryDirectory()
        let (built, package) = try Self.run(
            Self.root.appendingPathComponent("Scripts/build-deb.sh").path,
            ["--binary", ProxyProcess.binary.path, "--output", directory.file("out"), "--fast"])
        #expect(built == 0, "\(package)")
        let path = package.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) ?? ""
        #expect(path.hasSuffix(".deb"), "\(package)")

        // A dpkg database of the scratch root's own; the libraries it depends on are the host's.
        let scratch = directory.file("root")
        try FileManager.default.createDirectory(atPath: scratch + "/var/lib/dpkg/info", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch + "/var/lib/dpkg/updates", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: scratch + "/var/lib/dpkg/status", contents: Data())
        let (installed, output) = try Self.run(
            "/usr/bin/dpkg", ["--root=\(scratch)", "--force-depends", "--force-script-chrootless", "--log=/dev/null", "-i", path])
        #expect(installed == 0, "\(output)")
        for file in [
            "usr/bin/tcp-fallback", "usr/share/man/man1/tcp-fallback.1.gz", "lib/systemd/system/tcp-fallback.service",
            "lib/systemd/system/tcp-fallback@.service", "lib/systemd/system/tcp-fallback.socket", "lib/systemd/system/tcp-fallback-config.service", "etc/tcp-fallback.yaml.example", "etc/logrotate.d/tcp-fallback",
            "etc/default/tcp-fallback-mysql.example", "etc/default/tcp-fallback-mysql-writer.example",
            "etc/default/tcp-fallback-mysql-reader.example", "usr/share/doc/tcp-fallback/README.md",
        ] {
            #expect(FileManager.default.fileExists(atPath: scratch + "/" + file), "\(file) not in the package")
        }
        let unit = try String(contentsOfFile: scratch + "/lib/systemd/system/tcp-fallback.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/tcp-fallback "))
        let (ran, version) = try Self.run(scratch + "/usr/bin/tcp-fallback", ["--version"])
        #expect(ran == 0)
        #expect(version.trimmingCharacters(in: .whitespacesAndNewlines) == TCPFallbackVersion.current)
        let (_, conffiles) = try Self.run("/usr/bin/dpkg-query", ["--admindir=\(scratch)/var/lib/dpkg", "-W", "-f=${Conffiles}", "tcp-fallback"])
        #expect(conffiles.contains("/etc/logrotate.d/tcp-fallback"), "\(conffiles)")
    }

    @Test func makeInstallHonoursDestdirAndPrefix() throws {
        let directory = try TemporaryDirectory()
        let (status, output) = try Self.install(into: directory.path, prefix: "/usr")
        #expect(status == 0, "\(output)")
        for file in [
            "usr/bin/tcp-fallback", "usr/share/man/man1/tcp-fallback.1", "etc/systemd/system/tcp-fallback.service",
            "etc/systemd/system/tcp-fallback@.service", "etc/systemd/system/tcp-fallback.socket", "etc/systemd/system/tcp-fallback-config.service",
            "etc/tcp-fallback.yaml.example",
            "etc/logrotate.d/tcp-fallback", "etc/default/tcp-fallback-mysql.example",
            "etc/default/tcp-fallback-mysql-writer.example", "etc/default/tcp-fallback-mysql-reader.example",
        ] {
            #expect(FileManager.default.fileExists(atPath: directory.file(file)), "\(file) not installed")
        }
        let unit = try String(contentsOfFile: directory.file("etc/systemd/system/tcp-fallback.service"), encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/tcp-fallback "))
        #expect(FileManager.default.isExecutableFile(atPath: directory.file("usr/bin/tcp-fallback")))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "systemd-analyze is not installed"))
    func systemdAcceptsEveryUnit() throws {
        let directory = try TemporaryDirectory()
        #expect(try Self.install(into: directory.path).status == 0)
        // A root with the system's own units (the targets ours refer to) and /bin/kill.
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: directory.file("usr/lib/systemd"), withIntermediateDirectories: true)
        try fileManager.copyItem(atPath: "/usr/lib/systemd/system", toPath: directory.file("usr/lib/systemd/system"))
        try fileManager.createDirectory(atPath: directory.file("bin"), withIntermediateDirectories: true)
        try fileManager.copyItem(atPath: "/bin/kill", toPath: directory.file("bin/kill"))
        try fileManager.copyItem(atPath: directory.file("etc/default/tcp-fallback-mysql.example"), toPath: directory.file("etc/default/tcp-fallback-mysql"))
        let (status, output) = try Self.run(
            "/usr/bin/systemd-analyze",
            ["verify", "--man=no", "--root=\(directory.path)", "tcp-fallback.service", "tcp-fallback.socket", "tcp-fallback@mysql.service", "tcp-fallback-config.service"],
            in: directory.path)
        #expect(status == 0, "\(output)")
        #expect(!output.contains("tcp-fallback"), "\(output)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mandoc"), "mandoc is not installed"))
    func theManPageHasNoLintWarnings() throws {
        let (status, output) = try Self.run("/usr/bin/mandoc", ["-T", "lint", "-W", "warning", Self.root.appendingPathComponent("man/tcp-fallback.1").path])
        #expect(status == 0, "\(output)")
        #expect(output.isEmpty, "\(output)")
    }

    @Test func theManPageNamesTheEnvironmentSystemdSets() throws {
        let manPage = try String(contentsOf: Self.root.appendingPathComponent("man/tcp-fallback.1"), encoding: .utf8)
        for variable in ["NOTIFY_SOCKET", "LISTEN_FDS", "WATCHDOG_USEC", "JOURNAL_STREAM"] {
            #expect(manPage.contains(variable), "\(variable) missing")
        }
    }
}
