import Foundation
import Testing
import TestSupport

/// What a build without libsystemd's development files says: the package to install, not an
/// undefined symbol at link time.
@Suite struct BuildRequirementsTests {
    static let clang = "/opt/swift/usr/bin/clang"
    static let shim = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/CSystemd/shim.h").standardized.path

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: clang), "needs the toolchain's clang"))
    func aMissingLibsystemdDevIsNamed() throws {
        // Only the compiler's own headers: as on a machine without libsystemd-dev.
        let builtins = try FileManager.default.contentsOfDirectory(atPath: "/opt/swift/usr/lib/clang").map { "/opt/swift/usr/lib/clang/\($0)/include" }
        let (status, output) = try runProcess(Self.clang, ["-fsyntax-only", "-nostdinc"] + builtins.flatMap { ["-isystem", $0] } + [Self.shim])
        #expect(status != 0)
        #expect(output.contains("install libsystemd-dev"), "\(output)")
        let (present, presentOutput) = try runProcess(Self.clang, ["-fsyntax-only", Self.shim])
        #expect(present == 0, "\(presentOutput)")
    }

    static let yamlEvents = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Sources/CYAMLEvents/yaml_events.c").standardized.path

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: clang), "needs the toolchain's clang"))
    func aMissingLibyamlDevIsNamed() throws {
        // The system headers but not libyaml's: an empty directory stands first for nothing,
        // so point -nostdinc at the C library's headers only.
        let builtins = try FileManager.default.contentsOfDirectory(atPath: "/opt/swift/usr/lib/clang").map { "/opt/swift/usr/lib/clang/\($0)/include" }
        let include = URL(fileURLWithPath: Self.yamlEvents).deletingLastPathComponent().appendingPathComponent("include").path
        let (status, output) = try runProcess(
            Self.clang, ["-fsyntax-only", "-nostdinc"] + builtins.flatMap { ["-isystem", $0] } + ["-I", include, Self.yamlEvents])
        #expect(status != 0)
        #expect(output.contains("install libyaml-dev"), "\(output)")
        let (present, presentOutput) = try runProcess(Self.clang, ["-fsyntax-only", "-I", include, Self.yamlEvents])
        #expect(present == 0, "\(presentOutput)")
    }
}
