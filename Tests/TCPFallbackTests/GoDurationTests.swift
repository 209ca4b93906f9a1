import Testing
import TCPFallback

@Suite struct GoDurationTests {
    @Test(arguments: [
        ("0", Duration.zero), ("250ms", .milliseconds(250)), ("1.5s", .milliseconds(1500)),
        ("15m0s", .seconds(900)), ("1h2m3.5s", .milliseconds(3_723_500)), ("30s", .seconds(30)),
        ("-2s", .seconds(-2)), ("+5s", .seconds(5)), ("100us", .microseconds(100)), ("100µs", .microseconds(100)),
        ("7ns", .nanoseconds(7)), (".5s", .milliseconds(500)), ("1.s", .seconds(1)), ("0.3s", .milliseconds(300)),
        ("2h45m", .seconds(9900)),
    ])
    func parsesGoDurations(text: String, expected: Duration) throws {
        #expect(try GoDuration.parse(text) == expected)
    }

    @Test(arguments: [
        ("", "empty duration"), ("5", "missing unit"), ("5x", "unknown unit \"x\""), ("s", "expected a number"),
        ("1.5.5s", "missing unit"), ("-", "empty duration"), ("3000000h", "out of range"), ("1s2", "missing unit"),
    ])
    func rejectsBadDurations(text: String, reason: String) {
        #expect {
            try GoDuration.parse(text)
        } throws: { error in
            let message = "\(error)"
            return message.hasPrefix("invalid duration \"\(text)\"") && message.contains(reason)
        }
    }

    @Test(arguments: [
        (Duration.zero, "0s"), (.seconds(30), "30s"), (.seconds(900), "15m0s"), (.milliseconds(3_723_500), "1h2m3.5s"),
        (.milliseconds(250), "250ms"), (.microseconds(1500), "1.5ms"), (.nanoseconds(12), "12ns"), (.seconds(-90), "-1m30s"),
        (.seconds(3600), "1h0m0s"),
    ])
    func formatsLikeGo(duration: Duration, expected: String) {
        #expect(GoDuration.format(duration) == expected)
    }

    @Test func roundsForLogs() {
        #expect(GoDuration.formatApproximately(.milliseconds(12_437)) == "12.4s")
        #expect(GoDuration.formatApproximately(.milliseconds(3_723_612)) == "1h2m4s")
        #expect(GoDuration.formatApproximately(.microseconds(2_600)) == "3ms")
    }

    @Test func formatAndParseRoundTrip() throws {
        for text in ["1h2m3.5s", "15m0s", "250ms", "1.5ms", "30s"] {
            #expect(GoDuration.format(try GoDuration.parse(text)) == text)
        }
    }
}
