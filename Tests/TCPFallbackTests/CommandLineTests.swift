import Testing
import TCPFallback
@testable import TCPFallbackCommandLine

@Suite struct CommandLineTests {
    private func configuration(_ arguments: [String]) throws -> ProxyConfiguration {
        switch CommandLineTool.parse(arguments) {
        case .success(let command): return try command.makeConfiguration()
        case .failure(let outcome): throw outcome
        }
    }

    private func failure(_ arguments: [String]) -> CommandLineTool.ParseOutcome? {
        if case .failure(let outcome) = CommandLineTool.parse(arguments) { return outcome }
        return nil
    }

    @Test func defaultsAreTheOriginals() throws {
        let configuration = try configuration(["0.0.0.0:3306", "10.0.0.10:3306", "10.0.0.11:3306"])
        #expect(configuration.listen == Endpoint(host: "0.0.0.0", port: 3306))
        #expect(configuration.backends.map(\.description) == ["10.0.0.10:3306", "10.0.0.11:3306"])
        #expect(configuration.connectTimeout == .seconds(5))
        #expect(configuration.probeDelay == .seconds(30))
        #expect(configuration.statsInterval == .seconds(900))
        #expect(configuration.eventLoopThreads == 4)
        #expect(configuration.shutdownGrace == .seconds(10))
    }

    @Test(arguments: [
        ["-probe-delay=5s", ":1", "h:2"], ["-probe-delay", "5s", ":1", "h:2"], ["--probe-delay", "5s", ":1", "h:2"],
        ["--probe-delay=5s", ":1", "h:2"], [":1", "h:2", "-probe-delay=5s"],
    ])
    func acceptsGoAndGNUSyntax(arguments: [String]) throws {
        #expect(try configuration(arguments).probeDelay == .seconds(5))
    }

    @Test func readsEveryOriginalFlag() throws {
        let arguments = [
            "-debug", "-logfile=/tmp/x.log", "-maxthreads", "2", "-probe-delay=1m", "-quiet=false",
            "-stats=0", "-syslog=false", "-timeout=250ms", "-shutdown-grace=1s", "[::1]:3306", "db:3306",
        ]
        guard case .success(let command) = CommandLineTool.parse(arguments) else {
            Issue.record("did not parse")
            return
        }
        #expect(command.debug && !command.quiet && !command.syslog)
        #expect(command.logFile == "/tmp/x.log")
        let configuration = try command.makeConfiguration()
        #expect(configuration.eventLoopThreads == 2)
        #expect(configuration.probeDelay == .seconds(60))
        #expect(configuration.statsInterval == nil)
        #expect(configuration.connectTimeout == .milliseconds(250))
        #expect(configuration.shutdownGrace == .seconds(1))
    }

    @Test func dataPathFlags() throws {
        let defaults = try configuration([":1", "h:2"])
        #expect(defaults.keepalive == TCPKeepalive(idle: .seconds(60)))
        #expect(defaults.maxConnections == nil && defaults.idleTimeout == nil && defaults.sendProxy == nil)
        let set = try configuration(["-maxconn=500", "-idle-timeout=1h", "-keepalive", "2m", "-send-proxy", "v2", ":1", "h:2"])
        #expect(set.maxConnections == 500)
        #expect(set.idleTimeout == .seconds(3600))
        #expect(set.keepalive?.idle == .seconds(120) && set.keepalive?.interval == .seconds(10) && set.keepalive?.probes == 6)
        #expect(set.sendProxy == .v2)
        #expect(try configuration(["-keepalive=0", "-maxconn=0", ":1", "h:2"]).keepalive == nil)
    }

    @Test func booleansTakeGoValuesAndTheLastWins() throws {
        for (arguments, expected) in [
            (["-debug"], true), (["-debug=true"], true), (["-debug=false"], false), (["-debug=1"], true),
            (["-debug", "-debug=false"], false), (["--debug=F"], false), (["-debug=false", "-debug"], true),
        ] {
            guard case .success(let command) = CommandLineTool.parse(arguments + [":1", "h:2"]) else {
                Issue.record("\(arguments) did not parse")
                continue
            }
            #expect(command.debug == expected, "\(arguments)")
        }
    }

    @Test func probeDelayZeroMeansNoProbes() throws {
        #expect(try configuration(["-probe-delay=0", ":1", "h:2"]).probeDelay == nil)
    }

    @Test(arguments: [
        ([":1"], "at least one backend is needed"),
        ([String](), "missing <local-address:port>"),
        (["-bogus", ":1", "h:2"], "Unknown option '--bogus'"),
        (["-timeout=5x", ":1", "h:2"], "invalid duration \"5x\": unknown unit \"x\""),
        (["-timeout=0", ":1", "h:2"], "-timeout must be greater than 0"),
        (["-probe-delay=-1s", ":1", "h:2"], "-probe-delay must not be negative"),
        (["-maxthreads=0", ":1", "h:2"], "-maxthreads must be from 1 to 1024, got 0"),
        (["-maxthreads", "-1", ":1", "h:2"], "-maxthreads must be from 1 to 1024, got -1"),
        (["-maxthreads=many", ":1", "h:2"], "many"),
        (["-cpuprofile", ":1", "h:2"], "at least one backend is needed"),
        (["-debug=maybe", ":1", "h:2"], "invalid boolean value \"maybe\" for -debug"),
        ([":1", "foo"], "invalid backend address \"foo\": missing port"),
        (["foo", "h:1"], "invalid listen address \"foo\": missing port"),
        (["-syslog-facility=local9", ":1", "h:2"], "unknown -syslog-facility \"local9\""),
        (["-metrics=9100", ":1", "h:2"], "invalid -metrics address \"9100\": missing port"),
        ([":1", "h:2", "-timeout"], "flag needs an argument: -timeout"),
        (["-maxconn=-5", ":1", "h:2"], "-maxconn must be from 0 (no limit) to 10000000, got -5"),
        (["-idle-timeout=-1s", ":1", "h:2"], "-idle-timeout must not be negative"),
        (["-keepalive=500ms", ":1", "h:2"], "-keepalive must be at least 1s"),
        (["-send-proxy=v3", ":1", "h:2"], "unknown -send-proxy \"v3\" (use v1 or v2)"),
    ])
    func rejectsBadInputWithStatusTwo(arguments: [String], message: String) throws {
        let outcome = try #require(failure(arguments))
        #expect(outcome.status == .usage)
        #expect(outcome.message.contains(message), "\(outcome.message)")
        #expect(outcome.message.hasSuffix("Run 'tcp-fallback --help' for usage."))
        #expect(outcome.message.split(separator: "\n").count == 2)
    }

    @Test(arguments: [["--help"], ["-h"], ["-help"], ["--version"], ["-version"]])
    func helpAndVersionSucceed(arguments: [String]) throws {
        let outcome = try #require(failure(arguments))
        #expect(outcome.status == .success)
        #expect(!outcome.message.isEmpty)
    }

    @Test func helpListsEveryFlagWithItsDefault() throws {
        let help = try #require(failure(["--help"])).message
        for flag in TCPFallbackCommand.booleanFlags.union(TCPFallbackCommand.booleanOptions).union(TCPFallbackCommand.valueOptions) {
            #expect(help.contains("--\(flag)"), "--\(flag) missing from --help")
        }
        for value in ["(default: 4)", "(default: 30s)", "(default: 15m0s)", "(default: 5s)", "(default: 10s)"] {
            #expect(help.contains(value), "\(value) missing from --help")
        }
    }

    /// Every flag the command declares must be known to the Go-syntax rewriter.
    @Test func goSyntaxKnowsEveryFlag() {
        let help = TCPFallbackCommand.helpMessage()
        let optionLines = help.split(separator: "\n").filter { $0.hasPrefix("  -") }
        let declared = Set(optionLines.flatMap { $0.matches(of: /--([a-z][a-z0-9-]+)/).map { String($0.1) } })
            .subtracting(["help", "version"])
        #expect(declared == TCPFallbackCommand.booleanFlags.union(TCPFallbackCommand.booleanOptions).union(TCPFallbackCommand.valueOptions))
    }
}

/// What a reload changes, on plain values.
@Suite struct ListenerSetChangeTests {
    private func listener(_ name: String, _ settings: [String] = [], listen: String = ":1", backends: [Int] = [1], etcd: Bool = false) -> ListenerSetChange.Listener {
        ListenerSetChange.Listener(
            name: name, settings: settings + [listen], listen: listen, backends: backends.map { Endpoint(host: "10.0.0.\($0)", port: 3306) }, fromEtcd: etcd)
    }

    @Test func nothingChangedIsNoStep() {
        #expect(ListenerSetChange(from: [listener("a")], to: [listener("a")]).isEmpty)
    }

    @Test func removalsAndMovesComeBeforeAdditions() {
        let change = ListenerSetChange(
            from: [listener("a"), listener("b", listen: ":2"), listener("c", listen: ":3")],
            to: [listener("c", listen: ":4"), listener("d", listen: ":5"), listener("a", ["--timeout=2s"])])
        #expect(change.steps == [.remove("b"), .restart("c", sameSockets: false), .add("d"), .restart("a", sameSockets: true)])
    }

    @Test func aNewNameOnTheSameAddressTakesTheOldOnesSockets() {
        let change = ListenerSetChange(from: [listener("a", listen: ":1"), listener("b", listen: ":2")], to: [listener("c", listen: ":1")])
        #expect(change.steps == [.remove("b"), .rename(from: "a", to: "c")])
    }

    @Test func onlyBackendsChangedReplacesThemInPlace() {
        let change = ListenerSetChange(from: [listener("a", backends: [1, 2])], to: [listener("a", backends: [2, 1, 3])])
        guard case .replaceBackends("a", let list)? = change.steps.first else {
            Issue.record("\(change.steps)")
            return
        }
        #expect(list.added == [Endpoint(host: "10.0.0.3", port: 3306)] && list.reordered)
    }

    @Test func backendsFromEtcdAreOnlySeeds() {
        #expect(ListenerSetChange(from: [listener("a", backends: [1], etcd: true)], to: [listener("a", backends: [2], etcd: true)]).isEmpty)
    }
}

/// The command line `ctl upgrade` starts the new process with.
@Suite struct ProcessUpgradeTests {
    @Test func anEarlierTakeOverIsReplacedByOneNamingThisControlSocket() {
        #expect(
            ProcessUpgrade.arguments(["-control", "/run/c.sock", "-take-over", "/run/old.sock", "127.0.0.1:1", "127.0.0.1:2"], controlPath: "/run/c.sock")
                == ["-control", "/run/c.sock", "127.0.0.1:1", "127.0.0.1:2", "-take-over", "/run/c.sock"])
        #expect(
            ProcessUpgrade.arguments(["--take-over=/x", "-config", "f.yaml", "-control=/c"], controlPath: "/c")
                == ["-config", "f.yaml", "-control=/c", "-take-over", "/c"])
        // After "--" every word is an address: the flag goes before it.
        #expect(
            ProcessUpgrade.arguments(["-control", "/c", "--", "127.0.0.1:1", "-take-over"], controlPath: "/c")
                == ["-control", "/c", "-take-over", "/c", "--", "127.0.0.1:1", "-take-over"])
    }
}
