import Foundation
import Testing
import TestSupport

/// The documents an operator reads must match the binary they run.
@Suite struct DocumentationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func flagsInHelp() throws -> [String] {
        let (_, help) = try runProxyBinary(["--help"])
        let optionLines = help.split(separator: "\n").filter { $0.hasPrefix("  -") }
        let flags = optionLines.flatMap { $0.matches(of: /--([a-z][a-z0-9-]+)/).map { String($0.1) } }
        return flags.filter { $0 != "help" && $0 != "version" }
    }

    @Test func everyFlagInHelpIsInTheManPage() throws {
        let manPage = try String(contentsOf: Self.root.appendingPathComponent("man/tcp-fallback.1"), encoding: .utf8)
            .replacingOccurrences(of: "\\-", with: "-")
        let flags = try Self.flagsInHelp()
        #expect(flags.count >= 10)
        for flag in flags {
            #expect(manPage.contains(".BI -\(flag) ") || manPage.contains(".B -\(flag)\n"), "-\(flag) is not described in man/tcp-fallback.1")
        }
    }

    @Test func everyFlagInHelpIsInTheReadmeTable() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        for flag in try Self.flagsInHelp() {
            #expect(readme.contains("| `-\(flag)"), "-\(flag) is not in the README's flag table")
        }
    }

    @Test func ciRunsTheReadmesTestCommand() throws {
        let ci = try String(contentsOf: Self.root.appendingPathComponent(".ci/run"), encoding: .utf8)
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(ci.contains("Scripts/test.sh"))
        #expect(readme.contains("    Scripts/test.sh\n"))
    }
}
