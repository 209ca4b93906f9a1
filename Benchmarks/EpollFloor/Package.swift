// swift-tools-version:6.0
// A TCP relay in Swift on raw epoll, without SwiftNIO: what the benchmark's short connections
// cost when the data path is not made of NIO channels.
import PackageDescription

let package = Package(
    name: "EpollFloor",
    targets: [
        .target(name: "CEpoll"),
        .executableTarget(name: "epoll-floor", dependencies: ["CEpoll"], swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
