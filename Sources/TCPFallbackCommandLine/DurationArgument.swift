import ArgumentParser
import TCPFallback

/// A Go duration as a command-line value; shown in `--help` the way Go prints it (`15m0s`).
struct DurationArgument: Sendable, CustomStringConvertible {
    let duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    /// For `@Option(transform:)`: the error names the value and what is wrong with it.
    static func parse(_ text: String) throws -> DurationArgument {
        do {
            return DurationArgument(try GoDuration.parse(text))
        } catch {
            throw ValidationError(error.description)
        }
    }

    var description: String { GoDuration.format(duration) }
}

/// For `@Option(transform:)` of a flag that takes one of a few words; the error lists them.
func choice<Choice: RawRepresentable & CaseIterable & Sendable>(of _: Choice.Type, for flag: String) -> @Sendable (String) throws -> Choice
where Choice.RawValue == String {
    { text in
        guard let value = Choice(rawValue: text) else {
            let words = Choice.allCases.map(\.rawValue)
            throw ValidationError("unknown -\(flag) \"\(text)\" (use \(words.dropLast().joined(separator: ", ")) or \(words.last!))")
        }
        return value
    }
}
