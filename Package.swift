// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "tcp-fallback",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tcp-fallback", targets: ["tcp-fallback"]),
        .library(name: "TCPFallback", targets: ["TCPFallback"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // SHA-1, SHA-256 and RSA-OAEP for the MySQL check's login (no cryptography of our own).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // libsystemd, found through pkg-config; Debian: libsystemd-dev.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // The SIGPROF handler of the CPU profiler: async-signal-safe code belongs in C.
        .target(name: "CProfiler"),
        // The Linux calls of the data path that Glibc's module lacks (epoll, eventfd, accept4).
        .target(name: "CDataPath"),
        // The engine: registry, probes, connector, data path, logging, stats.
        .target(
            name: "TCPFallback",
            dependencies: [
                "CSystemd",
                "CProfiler",
                "CDataPath",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                "Etcd",
            ]
        ),
        // A small etcd v3 client over etcd's JSON gateway (HTTP/1 on SwiftNIO).
        .target(
            name: "Etcd",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/Etcd"
        ),
        // libyaml's event parser, for the configuration file (-config); Debian: libyaml-dev.
        .target(name: "CYAMLEvents", linkerSettings: [.linkedLibrary("yaml")]),
        // The command line: Go-compatible flags, start-up, signals.
        .target(
            name: "TCPFallbackCommandLine",
            dependencies: [
                "TCPFallback",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                "CYAMLEvents",
            ]
        ),
        .executableTarget(
            name: "tcp-fallback",
            dependencies: ["TCPFallbackCommandLine"]
        ),
        // libFuzzer target of the MySQL parsers (Scripts/fuzz.sh); otherwise a replayer of inputs.
        .executableTarget(
            name: "MySQLFuzzer",
            dependencies: ["TCPFallback"]
        ),
        // Sockets, servers, a manual clock and a process runner shared by the test targets.
        .target(
            name: "TestSupport",
            dependencies: [
                "TCPFallback",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: [.unsafeFlags(["-O"])]  // checksums over tens of megabytes
        ),
        .testTarget(
            name: "TCPFallbackTests",
            dependencies: [
                "TCPFallback",
                "TCPFallbackCommandLine",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "TCPFallback",
                "Etcd",
                "TestSupport",
                "tcp-fallback",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The etcd client against a real 3-member etcd cluster (Debian etcd-server).
        .testTarget(
            name: "EtcdTests",
            dependencies: ["Etcd", "TestSupport"],
            path: "Tests/EtcdTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
