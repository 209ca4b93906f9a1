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
