import ArgumentParser
import TCPFallback

/// The command line of `tcp-fallback`: the flags of the Go `tcp_fallback`, with its defaults,
/// plus a few of our own. Go syntax (`-flag=value`, `-flag value`, `-flag`) is rewritten to
/// this form by `GoFlagSyntax` before parsing.
struct TCPFallbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp-fallback",
        abstract: "A health-checking failover TCP proxy.",
        usage: """
            tcp-fallback [flags] <local-address:port> <remote-address:port> [<remote-address:port>...]
              tcp-fallback -etcd <urls> [flags] <local-address:port> [<remote-address:port>...]
              tcp-fallback -config <file> [-check-config] [flags]
              tcp-fallback ctl [-control <path>] <command> [--json]
            """,
        discussion: """
            Every client connection goes to the first backend of the list that is up. A backend \
            whose connection fails is marked down and probed every probe-delay until it answers; \
            the client is passed to the next backend at once, without noticing.

            Flags take Go syntax (-flag=value, -flag value, -flag) or GNU syntax (--flag value, \
            --flag=value). Durations are Go durations: 250ms, 1.5s, 15m0s, 1h2m3.5s.

            The listen address may be "systemd" (or "systemd:NAME") to serve the sockets systemd \
            passes (socket activation); with an ordinary address, passed sockets on that port are \
            used instead of binding.

            Logging goes to one place: nowhere with -quiet, else the journal with -journal, else \
            syslog with -syslog, else the -logfile file, else standard error (or the journal, \
            natively, when standard error is connected to it: JOURNAL_STREAM).

            With -config, a YAML file lists any number of named listeners, each with its own \
            listen address, backends and flags (keys are the flag names), plus process-wide keys \
            (logfile, control, metrics, ...); see the manual page.

            Signals: SIGHUP reopens the log file (and re-reads the -config file, applying what \
            changed without cutting a connection), SIGUSR1 logs the stats at once, SIGUSR2 writes \
            the -cpuprofile profile so far, SIGTERM and SIGINT stop accepting and let open \
            connections finish for -shutdown-grace.

            Exit status: 0 after a requested shutdown, 1 when the listener or the log file \
            cannot be opened, 2 for a bad command line or configuration file.
            """,
        version: TCPFallbackVersion.current
    )

    /// Flags that take no value (Go booleans); `GoFlagSyntax` needs to know them.
    static let booleanFlags: Set<String> = ["check-config", "debug", "failback-close", "journal", "quiet", "syslog"]
    /// Booleans that default to true (`-flag=false` turns them off).
    static let booleanOptions: Set<String> = ["close-on-down", "splice"]
    /// Flags that take a value.
    static let valueOptions: Set<String> = [
        "balance", "check", "check-interval", "check-password-file", "check-user", "config", "control", "etcd", "etcd-group", "etcd-layout", "etcd-lost", "etcd-member", "etcd-prefix", "etcd-quorum", "max-lag", "reader-fallback", "role", "split-brain", "cpuprofile", "fall", "failback", "failback-delay", "greeting-timeout",
        "idle-timeout", "keepalive", "maxconn", "queue-timeout", "rise", "send-proxy", "state-file", "logfile", "maxthreads", "metrics",
        "probe-delay", "shutdown-grace", "stats", "syslog-facility", "take-over", "timeout",
    ]

    @Option(
        name: .customLong("balance"),
        help: ArgumentHelp("How new clients are spread over equally good backends: first (the first in order), roundrobin (each in turn) or leastconn (the fewest open connections). (default: first; roundrobin with -role reader)", valueName: "mode"),
        transform: choice(of: BalanceMode.self, for: "balance"))
    var balance: BalanceMode?

    @Option(
        name: .customLong("config"),
        help: ArgumentHelp("Serve the listeners of a YAML configuration file instead of a listen address and backends on the command line; SIGHUP or 'ctl reload' re-reads it and applies what changed. Other flags given with it are defaults beneath the file's keys. (default: off)", valueName: "file"))
    var config: String?

    @Flag(name: .customLong("check-config"), help: "With -config: load and check the file, print what it would serve, and exit (0 if it is valid, 2 if not) without starting.")
    var checkConfig = false

    @Option(
        name: .customLong("check"),
        help: ArgumentHelp("What probes and active checks run: tcp (a connect) or mysql (a MySQL/MariaDB handshake; error packets fail). mysql also turns on -greeting-timeout. (default: tcp)", valueName: "kind"),
        transform: choice(of: HealthCheckKind.self, for: "check"))
    var check = HealthCheckKind.tcp

    @Option(
        name: .customLong("check-interval"),
        help: ArgumentHelp("Check every backend, up or down, this often (faster while one changes state), with -rise and -fall. Without it, as the original: a failed connect marks a backend down, probes every -probe-delay bring it back. (default: off)", valueName: "duration"),
        transform: DurationArgument.parse)
    var checkInterval: DurationArgument?

    @Option(
        name: .customLong("check-password-file"),
        help: ArgumentHelp("With -check-user: the file whose first line is the check user's password; it must not be readable by group or others.", valueName: "path"))
    var checkPasswordFile: String?

    @Option(
        name: .customLong("check-user"),
        help: ArgumentHelp("With -check mysql: log in as this user, and read each server's role in one query (read_only, replication threads and lag). It needs REPLICATION CLIENT (MariaDB: SLAVE MONITOR). (default: an anonymous greeting check)", valueName: "name"))
    var checkUser: String?

    @Option(
        name: .customLong("close-on-down"),
        help: ArgumentHelp("Close the open connections of a backend when it is marked down, so clients reconnect to the next one. (default: true)", valueName: "bool"),
        transform: { text in
            guard let value = GoFlagSyntax.parseBool(text) else { throw ValidationError("invalid boolean value \"\(text)\" for -close-on-down") }
            return value
        })
    var closeOnDown = true

    @Option(name: .customLong("control"), help: ArgumentHelp("Open a control socket at <path> (mode 0600) for 'tcp-fallback ctl': show backends, disable, enable, drain, ...", valueName: "path"))
    var controlPath: String?

    @Option(name: .customLong("cpuprofile"), help: ArgumentHelp("Profile CPU use from start-up and write a pprof profile to <file> on exit, and on SIGUSR2 without stopping.", valueName: "file"))
    var cpuProfile: String?

    @Option(
        name: .customLong("failback"),
        help: ArgumentHelp("When a backend that failed and came back is used again: auto (at once, as the original), hold (after -failback-delay up, doubling when it flaps), manual (only after 'tcp-fallback ctl failback BACKEND'; kept in -state-file). (default: auto)", valueName: "policy"),
        transform: choice(of: FailbackSettings.Policy.self, for: "failback"))
    var failback = FailbackSettings.Policy.auto

    @Flag(name: .customLong("failback-close"), help: "When new clients go back to a higher-priority backend, close the connections still on lower ones.")
    var failbackClose = false

    @Option(
        name: .customLong("failback-delay"),
        help: ArgumentHelp("With -failback hold: how long a backend must stay up before it is used again; doubles each time it flaps, up to 1h. (default: 30s)", valueName: "duration"),
        transform: DurationArgument.parse)
    var failbackDelay = DurationArgument(.seconds(30))

    @Option(name: .customLong("fall"), help: ArgumentHelp("With -check-interval: consecutive failed checks that mark a backend down.", valueName: "n"))
    var fall = 2

    @Option(
        name: .customLong("greeting-timeout"),
        help: ArgumentHelp("Wait up to this long for a backend's first bytes before committing a client to it; nothing (a hung server), or with -check mysql an error packet, fails the backend over. 0 turns it off. (default: off; -timeout with -check mysql)", valueName: "duration"),
        transform: DurationArgument.parse)
    var greetingTimeout: DurationArgument?

    @Option(
        name: .customLong("idle-timeout"),
        help: ArgumentHelp("Close a connection when no byte has moved either way for this long; 0 never does. (default: 0)", valueName: "duration"),
        transform: DurationArgument.parse)
    var idleTimeout = DurationArgument(.zero)

    @Option(
        name: .customLong("keepalive"),
        help: ArgumentHelp("TCP keepalive on both sides of every connection: probes start after this long idle, every min(this, 10s), 6 of them, so a dead peer is found within this plus a minute. 0 turns it off. (default: 1m0s)", valueName: "duration"),
        transform: DurationArgument.parse)
    var keepalive = DurationArgument(.seconds(60))

    @Option(
        name: .customLong("etcd"),
        help: ArgumentHelp("Take the list of backends from etcd and follow its changes: comma-separated client URLs of one cluster (http://HOST:PORT), used in turn when one fails. Backends given on the command line are only used until etcd first answers. (default: off)", valueName: "urls"))
    var etcd: String?

    @Option(
        name: .customLong("etcd-group"),
        help: ArgumentHelp("With -etcd and -check-interval: share the decision of which backend new clients go to with every proxy started with the same group name. Each publishes what its checks see; one elected member moves the group off a backend only when -etcd-quorum members see it down; all follow. (default: off)", valueName: "name"))
    var etcdGroup: String?

    @Option(
        name: .customLong("etcd-layout"),
        help: ArgumentHelp("How -etcd lists the backends under -etcd-prefix: native (one key PREFIX/backends = [\"HOST:PORT\", ...]), netfw (PREFIX/N/location = {\"host\":..,\"port\":..}, by N) or groxy (one key PREFIX/HOST:PORT each, in key order). (default: native)", valueName: "layout"),
        transform: choice(of: EtcdLayout.self, for: "etcd-layout"))
    var etcdLayout: EtcdLayout?

    @Option(
        name: .customLong("etcd-lost"),
        help: ArgumentHelp("With -etcd-group, when this member loses etcd (its lease expires): keep (serve the last decision: clients keep working, at the risk of a split while etcd is away) or refuse (accept no new client until etcd is back). (default: keep)", valueName: "policy"),
        transform: choice(of: GroupSettings.LostPolicy.self, for: "etcd-lost"))
    var etcdLost = GroupSettings.LostPolicy.keep

    @Option(name: .customLong("etcd-member"), help: ArgumentHelp("This proxy's name in its -etcd-group; unique in the group. (default: HOST:PID)", valueName: "name"))
    var etcdMember: String?

    @Option(
        name: .customLong("etcd-quorum"),
        help: ArgumentHelp("With -etcd-group: how many live members must see the decided backend down before the group moves off it: majority, or a number. (default: majority)", valueName: "quorum"))
    var etcdQuorum = "majority"

    @Option(name: .customLong("etcd-prefix"), help: ArgumentHelp("The etcd key prefix the backends are listed under (-etcd). (default: /tcp-fallback)", valueName: "path"))
    var etcdPrefix: String?

    @Flag(name: .customLong("debug"), help: "Log a line per connection: client, backend, bytes each way, duration, how it ended.")
    var debug = false

    @Flag(name: .customLong("journal"), help: "Log to the systemd journal with structured fields (BACKEND, CLIENT, EVENT).")
    var journal = false

    @Option(name: .customLong("logfile"), help: ArgumentHelp("Log to <file> (appended, created with mode 0640); SIGHUP reopens it.", valueName: "file"))
    var logFile: String?

    @Option(
        name: .customLong("maxconn"),
        help: ArgumentHelp("At most this many client connections open at once; more wait in the listen backlog until some close. 0: no limit.", valueName: "n"))
    var maxConnections = 0

    @Option(
        name: .customLong("max-lag"),
        help: ArgumentHelp("With -role reader: replicas further behind than this get no new clients; 0: no limit. (default: 30s)", valueName: "duration"),
        transform: DurationArgument.parse)
    var maxLag = DurationArgument(.seconds(30))

    @Option(name: .customLong("maxthreads"), help: ArgumentHelp("The most data-path threads: one runs per CPU the process may use (affinity, cgroup quota), up to this many.", valueName: "n"))
    var maxThreads = 4

    @Option(name: .customLong("metrics"), help: ArgumentHelp("Serve Prometheus metrics at http://<address:port>/metrics, e.g. 127.0.0.1:9100 or :9100.", valueName: "address:port"))
    var metricsAddress: String?

    @Option(
        name: .customLong("probe-delay"),
        help: ArgumentHelp("Delay between probes of a backend that is down. 0 disables probes: a down backend then returns only when a client connects to it, which is tried when every backend is down. (default: 30s)", valueName: "duration"),
        transform: DurationArgument.parse)
    var probeDelay = DurationArgument(.seconds(30))

    @Flag(name: .customLong("quiet"), help: "Log nothing.")
    var quiet = false

    @Option(
        name: .customLong("queue-timeout"),
        help: ArgumentHelp("When no backend connects, how long a new client may wait for one to come back; 0 closes it at once. (default: 0)", valueName: "duration"),
        transform: DurationArgument.parse)
    var queueTimeout = DurationArgument(.zero)

    @Option(
        name: .customLong("reader-fallback"),
        help: ArgumentHelp("With -role reader, when no replica qualifies: writer (send clients to the writer) or none (refuse them). (default: writer)", valueName: "where"),
        transform: choice(of: ReaderFallback.self, for: "reader-fallback"))
    var readerFallback = ReaderFallback.writer

    @Option(
        name: .customLong("role"),
        help: ArgumentHelp("Which backends new clients go to, by what the MySQL servers are: any (the first up), writer (the first up and writable) or reader (up, read-only, replicating, within -max-lag). writer and reader need -check mysql, -check-user and -check-interval. (default: any)", valueName: "role"),
        transform: choice(of: BackendRole.self, for: "role"))
    var role = BackendRole.any

    @Option(name: .customLong("rise"), help: ArgumentHelp("With -check-interval: consecutive passed checks that bring a down backend back.", valueName: "n"))
    var rise = 2

    @Option(
        name: .customLong("send-proxy"),
        help: ArgumentHelp("Send a PROXY protocol header (v1: text, v2: binary) to backends first, so they see the client's address (MariaDB: proxy_protocol_networks). (default: off)", valueName: "version"),
        transform: choice(of: ProxyProtocolVersion.self, for: "send-proxy"))
    var sendProxy: ProxyProtocolVersion?

    @Option(
        name: .customLong("shutdown-grace"),
        help: ArgumentHelp("After SIGTERM or SIGINT, how long open connections may go on before they are closed. (default: 10s)", valueName: "duration"),
        transform: DurationArgument.parse)
    var shutdownGrace = DurationArgument(.seconds(10))

    @Option(
        name: .customLong("split-brain"),
        help: ArgumentHelp("With -role writer, when several backends are writable at once: refuse (accept no new writer connections until one is left) or first (the first writable in order). (default: refuse)", valueName: "policy"),
        transform: choice(of: SplitBrainPolicy.self, for: "split-brain"))
    var splitBrain = SplitBrainPolicy.refuse

    @Option(
        name: .customLong("splice"),
        help: ArgumentHelp("Once a direction of a connection carries a bulk transfer (a read fills 64 KiB), move its bytes with splice(2) through a pipe, without copying them through the proxy. (default: true)", valueName: "bool"),
        transform: { text in
            guard let value = GoFlagSyntax.parseBool(text) else { throw ValidationError("invalid boolean value \"\(text)\" for -splice") }
            return value
        })
    var splice = true

    @Option(name: .customLong("state-file"), help: ArgumentHelp("The file (written atomically) that keeps, across restarts, which backends -failback manual holds and the last list of backends from -etcd (used when etcd is down at start-up).", valueName: "path"))
    var stateFile: String?

    @Option(
        name: .customLong("stats"),
        help: ArgumentHelp("Interval of the periodic stats lines; 0 turns them off. (default: 15m0s)", valueName: "duration"),
        transform: DurationArgument.parse)
    var stats = DurationArgument(.seconds(15 * 60))

    @Flag(name: .customLong("syslog"), help: "Log to syslog with the identifier tcp-fallback and the facility of -syslog-facility.")
    var syslog = false

    @Option(name: .customLong("syslog-facility"), help: ArgumentHelp("Syslog facility for -syslog: daemon, user, local0 to local7, ...", valueName: "name"))
    var syslogFacility = "daemon"

    @Option(
        name: .customLong("take-over"),
        help: ArgumentHelp("Upgrade without refusing a connection: take the listening sockets over from the tcp-fallback whose control socket is <path>, serve them, then ask it to retire (it stops accepting, lets its connections finish within its -shutdown-grace, and exits). Give the same listen address and flags as the running one. (default: off)", valueName: "path"))
    var takeOver: String?

    @Option(
        name: .customLong("timeout"),
        help: ArgumentHelp("Timeout of each connection attempt to a backend, by clients and by probes. (default: 5s)", valueName: "duration"),
        transform: DurationArgument.parse)
    var timeout = DurationArgument(.seconds(5))

    @Argument(help: ArgumentHelp("The address to listen on (or \"systemd\" for socket activation), then the backends in order of preference.", valueName: "address:port"))
    var addresses: [String] = []

    mutating func validate() throws {
        if config != nil {
            guard addresses.isEmpty else {
                throw ValidationError("-config takes no listen address or backends on the command line: the file lists them (got \"\(addresses.joined(separator: " "))\")")
            }
            return
        }
        if checkConfig { throw ValidationError("-check-config needs -config FILE") }
        _ = try makeConfiguration()
    }

    /// The keys of a configuration file's top level: what one process has once, whatever its
    /// listeners (logging, control socket, metrics, profile, stats, shutdown).
    static let processKeys: Set<String> = [
        "control", "cpuprofile", "debug", "journal", "logfile", "metrics", "quiet", "shutdown-grace", "stats", "syslog", "syslog-facility",
    ]

    /// The keys of a listener (and of `defaults`): every other flag, plus its address and backends.
    static var listenerKeys: Set<String> {
        booleanFlags.union(booleanOptions).union(valueOptions).subtracting(processKeys).subtracting(["check-config", "config", "take-over"])
            .union(["listen", "backends"])
    }

    /// Which sockets passed by systemd the listen argument designates.
    var listenSelection: SocketActivation.Selection {
        let text = addresses.first ?? ""
        return SocketActivation.Selection(placeholder: text) ?? .matching((try? Endpoint(parsing: text, role: .listen)) ?? Endpoint(host: "", port: 0))
    }

    /// The engine's configuration; throws a `ValidationError` naming what is wrong.
    func makeConfiguration() throws -> ProxyConfiguration {
        guard let listenText = addresses.first else {
            throw ValidationError("missing <local-address:port> and <remote-address:port>")
        }
        guard addresses.count >= 2 || etcd != nil else {
            throw ValidationError("missing <remote-address:port>: at least one backend is needed (or -etcd)")
        }
        if etcd == nil && (etcdPrefix != nil || etcdLayout != nil || etcdGroup != nil) {
            throw ValidationError("-etcd-prefix, -etcd-layout and -etcd-group need -etcd")
        }
        guard let quorum = GroupSettings.Quorum(etcdQuorum) else {
            throw ValidationError("-etcd-quorum must be majority or a number from 1 to 1000, got \"\(etcdQuorum)\"")
        }
        var groupSettings: GroupSettings?
        if let etcdGroup {
            guard !etcdGroup.isEmpty, etcdGroup.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw ValidationError("-etcd-group must be a name of letters, digits, '-', '_' and '.', got \"\(etcdGroup)\"")
            }
            guard let checkInterval else {
                throw ValidationError("-etcd-group needs -check-interval: each member publishes what its checks see, all the time")
            }
            guard role == .any else {
                throw ValidationError("-etcd-group does not take -role \(role.rawValue) yet: the group votes on whether backends are up, not on what the servers are")
            }
            let member = etcdMember ?? GroupSettings.defaultMemberName()
            guard !member.isEmpty, !member.contains("/") else {
                throw ValidationError("-etcd-member must be a non-empty name without '/', got \"\(member)\"")
            }
            // A member silent for three check intervals (at least 3s: three keepalives of at
            // most a second each) is no longer counted.
            let ttl = max(.seconds(3), checkInterval.duration * 3)
            var settings = GroupSettings(name: etcdGroup, member: member, leaseTTL: .seconds(Int64((ttl / .seconds(1)).rounded(.up))))
            settings.quorum = quorum
            settings.lost = etcdLost
            groupSettings = settings
        } else if etcdMember != nil {
            throw ValidationError("-etcd-member needs -etcd-group")
        }
        var etcdSettings: EtcdSettings?
        if let etcd {
            if let etcdPrefix, etcdPrefix.allSatisfy({ $0 == "/" }) {
                throw ValidationError("-etcd-prefix must name a key prefix, such as /services/mysql; got \"\(etcdPrefix)\"")
            }
            do {
                etcdSettings = EtcdSettings(endpoints: try EtcdSettings.parseEndpoints(etcd), prefix: etcdPrefix ?? "/tcp-fallback", layout: etcdLayout ?? .native)
            } catch {
                throw ValidationError("invalid -etcd: \(error)")
            }
        }
        guard SyslogSink.facilities[syslogFacility] != nil else {
            throw ValidationError("unknown -syslog-facility \"\(syslogFacility)\" (use \(SyslogSink.facilities.keys.sorted().joined(separator: ", ")))")
        }
        let listen: Endpoint
        let backends: [Endpoint]
        do {
            // "systemd" takes sockets from socket activation: there is no address to bind.
            listen = SocketActivation.Selection(placeholder: listenText) != nil
                ? Endpoint(host: "", port: 0) : try Endpoint(parsing: listenText, role: .listen)
            backends = try addresses.dropFirst().map { text throws(Endpoint.ParseError) in
                try Endpoint(parsing: text, role: .backend)
            }
        } catch {
            throw ValidationError(error.description)
        }
        if let metricsAddress {
            do {
                _ = try Endpoint(parsing: metricsAddress, role: .listen)
            } catch {
                throw ValidationError("invalid -metrics address \"\(error.input)\": \(error.reason)")
            }
        }
        guard (1...1024).contains(maxThreads) else {
            throw ValidationError("-maxthreads must be from 1 to 1024, got \(maxThreads)")
        }
        guard timeout.duration > .zero else {
            throw ValidationError("-timeout must be greater than 0, got \(timeout)")
        }
        for (name, value) in [("probe-delay", probeDelay), ("stats", stats), ("shutdown-grace", shutdownGrace)]
        where value.duration < .zero {
            throw ValidationError("-\(name) must not be negative, got \(value)")
        }
        for (name, value) in [("rise", rise), ("fall", fall)] where !(1...100).contains(value) {
            throw ValidationError("-\(name) must be from 1 to 100, got \(value)")
        }
        if let checkInterval, checkInterval.duration <= .zero {
            throw ValidationError("-check-interval must be greater than 0, got \(checkInterval)")
        }
        for (name, value) in [("failback-delay", failbackDelay), ("queue-timeout", queueTimeout)] where value.duration < .zero {
            throw ValidationError("-\(name) must not be negative, got \(value)")
        }
        for (name, value) in [("idle-timeout", idleTimeout), ("keepalive", keepalive)] where value.duration < .zero {
            throw ValidationError("-\(name) must not be negative, got \(value)")
        }
        if keepalive.duration > .zero && keepalive.duration < .seconds(1) {
            throw ValidationError("-keepalive must be at least 1s (the kernel counts whole seconds), got \(keepalive)")
        }
        guard (0...10_000_000).contains(maxConnections) else {
            throw ValidationError("-maxconn must be from 0 (no limit) to 10000000, got \(maxConnections)")
        }
        if let greetingTimeout, greetingTimeout.duration < .zero {
            throw ValidationError("-greeting-timeout must not be negative, got \(greetingTimeout)")
        }
        if checkUser != nil && check != .mysql {
            throw ValidationError("-check-user needs -check mysql")
        }
        if checkPasswordFile != nil && checkUser == nil {
            throw ValidationError("-check-password-file needs -check-user")
        }
        if role != .any {
            guard check == .mysql, checkUser != nil, checkInterval != nil else {
                throw ValidationError("-role \(role.rawValue) needs -check mysql, -check-user and -check-interval: the role of each server is what the check reads")
            }
        }
        guard maxLag.duration >= .zero else {
            throw ValidationError("-max-lag must not be negative, got \(maxLag)")
        }
        var credentials: MySQLCredentials?
        if let checkUser {
            guard !checkUser.isEmpty, checkUser.utf8.count <= 80, !checkUser.utf8.contains(0) else {
                throw ValidationError("-check-user must be a user name of 1 to 80 bytes")
            }
            do {
                credentials = MySQLCredentials(user: checkUser, password: try checkPasswordFile.map(MySQLCredentials.readPassword) ?? [])
            } catch {
                throw ValidationError(error.description)
            }
        }
        var configuration = ProxyConfiguration(
            listen: listen,
            backends: backends,
            connectTimeout: timeout.duration,
            probeDelay: probeDelay.duration == .zero ? nil : probeDelay.duration,
            statsInterval: stats.duration == .zero ? nil : stats.duration,
            eventLoopThreads: maxThreads,
            shutdownGrace: shutdownGrace.duration)
        configuration.check = check
        configuration.etcd = etcdSettings
        configuration.group = groupSettings
        configuration.activeChecks = checkInterval.map { ActiveChecks(interval: $0.duration, rise: rise, fall: fall) }
        let greeting = greetingTimeout?.duration ?? (check == .mysql ? timeout.duration : .zero)
        configuration.greetingTimeout = greeting > .zero ? greeting : nil
        configuration.closeSessionsOnDown = closeOnDown
        configuration.failback.policy = failback
        configuration.failback.delay = failbackDelay.duration
        configuration.failback.stateFile = stateFile
        configuration.failback.closeLowerConnections = failbackClose
        configuration.queueTimeout = queueTimeout.duration > .zero ? queueTimeout.duration : nil
        configuration.idleTimeout = idleTimeout.duration > .zero ? idleTimeout.duration : nil
        configuration.keepalive = keepalive.duration > .zero ? TCPKeepalive(idle: keepalive.duration) : nil
        configuration.maxConnections = maxConnections > 0 ? maxConnections : nil
        configuration.sendProxy = sendProxy
        configuration.splice = splice
        configuration.checkCredentials = credentials
        configuration.roles.role = role
        configuration.roles.splitBrain = splitBrain
        configuration.roles.maxLag = maxLag.duration > .zero ? maxLag.duration : nil
        configuration.roles.readerFallback = readerFallback
        configuration.balance = balance ?? (role == .reader ? .roundrobin : .first)
        return configuration
    }
}
