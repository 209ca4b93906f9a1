/// Durations written the way Go's `time.ParseDuration` reads them and `time.Duration.String`
/// prints them, so that `tcp_fallback` command lines and unit files keep their meaning.
public enum GoDuration {
    /// Why a duration could not be read; the message names the input.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let input: String
        public let reason: String
        public var description: String { "invalid duration \"\(input)\": \(reason)" }
    }

    private static let units: [(suffix: String, nanoseconds: Int64)] = [
        ("ns", 1), ("us", 1_000), ("\u{00B5}s", 1_000), ("\u{03BC}s", 1_000), ("ms", 1_000_000),
        ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ]

    /// Parses `250ms`, `1.5s`, `15m0s`, `1h2m3.5s`, `-2s` or `0`.
    public static func parse(_ input: String) throws(ParseError) -> Duration {
        func fail(_ reason: String) -> ParseError { ParseError(input: input, reason: reason) }
        var rest = Substring(input)
        var negative = false
        if let sign = rest.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return .zero }
        if rest.isEmpty { throw fail("empty duration") }

        var total: Int64 = 0
        while !rest.isEmpty {
            let whole = rest.prefix(while: \.isASCIIDigit)
            rest = rest.dropFirst(whole.count)
            var fraction = Substring()
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix(while: \.isASCIIDigit)
                rest = rest.dropFirst(fraction.count)
            }
            if whole.isEmpty && fraction.isEmpty { throw fail("expected a number") }
            let unitText = rest.prefix(while: { !$0.isASCIIDigit && $0 != "." })
            rest = rest.dropFirst(unitText.count)
            if unitText.isEmpty { throw fail("missing unit (use ns, us, ms, s, m or h)") }
            guard let unit = units.first(where: { $0.suffix == unitText })?.nanoseconds else {
                throw fail("unknown unit \"\(unitText)\" (use ns, us, ms, s, m or h)")
            }
            guard let value = Int64(whole.isEmpty ? "0" : String(whole)),
                case (let scaled, false) = value.multipliedReportingOverflow(by: unit),
                case (let sum, false) = total.addingReportingOverflow(scaled)
            else { throw fail("out of range") }
            total = sum
            // The fraction adds at most one unit, so it cannot overflow once the sum above fit.
            var numerator: Int64 = 0
            var denominator: Int64 = 1
            for digit in fraction.prefix(18) {
                numerator = numerator * 10 + Int64(digit.asciiValue! - 48)
                denominator *= 10
            }
            let part = Int64(Double(numerator) * (Double(unit) / Double(denominator)))  // as Go computes it
            guard case (let withFraction, false) = total.addingReportingOverflow(part) else {
                throw fail("out of range")
            }
            total = withFraction
        }
        return .nanoseconds(negative ? -total : total)
    }

    /// Prints a duration as Go does: `0s`, `250ms`, `1.5s`, `15m0s`, `1h2m3.5s`.
    public static func format(_ duration: Duration) -> String {
        let nanoseconds = duration.nanosecondsClamped
        let sign = nanoseconds < 0 ? "-" : ""
        var value = nanoseconds.magnitude
        if value == 0 { return "0s" }
        if value < 1_000 { return "\(sign)\(value)ns" }
        if value < 1_000_000 { return sign + decimal(value, scale: 3) + "\u{00B5}s" }
        if value < 1_000_000_000 { return sign + decimal(value, scale: 6) + "ms" }
        var text = decimal(value % 60_000_000_000, scale: 9) + "s"
        value /= 60_000_000_000
        if value > 0 {
            text = "\(value % 60)m" + text
            value /= 60
            if value > 0 { text = "\(value)h" + text }
        }
        return sign + text
    }

    /// Like `format`, rounded for people reading logs: `12.4s`, `3ms`, `1h2m3s`.
    public static func formatApproximately(_ duration: Duration) -> String {
        let nanoseconds = duration.nanosecondsClamped.magnitude
        let step: UInt64 =
            nanoseconds >= 60_000_000_000 ? 1_000_000_000
            : nanoseconds >= 1_000_000_000 ? 100_000_000
            : nanoseconds >= 1_000_000 ? 1_000_000 : 1_000
        let rounded = (nanoseconds + step / 2) / step * step
        return format(.nanoseconds(Int64(clamping: rounded) * (duration < .zero ? -1 : 1)))
    }

    private static func decimal(_ value: UInt64, scale: Int) -> String {
        var divisor: UInt64 = 1
        for _ in 0..<scale { divisor *= 10 }
        let whole = value / divisor
        let fraction = value % divisor
        if fraction == 0 { return "\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: scale - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension Duration {
    /// Whole nanoseconds, clamped to `Int64`.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow
            ? (seconds < 0 ? .min : .max) : scaled + attoseconds / 1_000_000_000
    }
}
