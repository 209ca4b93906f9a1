import Testing
import TCPFallback

@Suite struct ControlCommandTests {
    @Test(arguments: [
        ("show backends", ControlCommand(action: .showBackends)),
        ("show backends --json", ControlCommand(action: .showBackends, json: true)),
        ("  show   stats ", ControlCommand(action: .showStats)),
        ("disable 127.0.0.1:3306", ControlCommand(action: .disable("127.0.0.1:3306"))),
        ("enable 1", ControlCommand(action: .enable("1"))),
        ("drain db:1 --json", ControlCommand(action: .drain("db:1"), json: true)),
        ("shutdown sessions 0", ControlCommand(action: .shutdownSessions("0"))),
        ("failback 0", ControlCommand(action: .failback("0"))),
        ("profile start /tmp/p.pb.gz", ControlCommand(action: .profileStart("/tmp/p.pb.gz"))),
        ("profile stop", ControlCommand(action: .profileStop)),
        ("help", ControlCommand(action: .help)),
    ])
    func parses(line: String, expected: ControlCommand) throws {
        #expect(try ControlCommand(parsing: line) == expected)
    }

    @Test(arguments: [
        ("", "empty command"), ("show", "usage: show backends | show stats"), ("show backends now", "usage: show"),
        ("disable", "usage: disable BACKEND"), ("disable a b", "usage: disable BACKEND"),
        ("shutdown 1", "usage: shutdown sessions BACKEND"), ("profile", "usage: profile start FILE"),
        ("frobnicate", "unknown command \"frobnicate\""),
        (String(repeating: "y", count: 100), "unknown command \"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...\""),
    ])
    func rejects(line: String, message: String) {
        #expect {
            try ControlCommand(parsing: line)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func jsonIsEscaped() {
        let value = JSON.object([("a", .string("q\"b\\n\nt\u{1}")), ("n", .null), ("x", .array([.int(1), .bool(false), .double(0.5)]))])
        #expect(value.text == #"{"a":"q\"b\\n\nt\u0001","n":null,"x":[1,false,0.5]}"#)
    }
}
