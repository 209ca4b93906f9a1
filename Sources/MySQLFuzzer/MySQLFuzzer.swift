// A libFuzzer target for the parsers of what MySQL servers send: the greeting gate's
// `MySQLProtocol.parseGreeting`, and the check's packet reader, handshake, result sets and
// whole login conversation (with and without credentials). Built by Scripts/fuzz.sh with
// -sanitize=fuzzer,address and -DFUZZING; without FUZZING it is a replayer that feeds each
// file named on its command line through the same code (for crashes the fuzzer found).
@testable import TCPFallback

#if canImport(Glibc)
import Glibc
#endif

enum MySQLFuzzInput {
    static func run(_ bytes: [UInt8]) {
        _ = MySQLProtocol.parseGreeting(bytes)
        var packets: [MySQLPacket] = []
        var reader = MySQLPacketReader()
        reader.append(bytes)
        while let packet = try? reader.next() { packets.append(packet) }
        for packet in packets { _ = try? MySQLHandshake(payload: packet.payload) }
        var parser = MySQLResultSetParser()
        for packet in packets {
            guard (try? parser.receive(packet)) != nil else { break }
        }
        for credentials in [nil, MySQLCredentials(user: "monitor", password: Array("pw".utf8))] {
            var conversation = MySQLCheckConversation(credentials: credentials)
            for packet in packets where conversation.receive(packet).result != nil { break }
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    MySQLFuzzInput.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// libFuzzer's driver: SwiftPM names an executable's entry point itself, so libFuzzer's own
/// `main` cannot be used; this `main` hands over to the driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@main
enum MySQLFuzzerMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOne))
    }
}
#else
@main
enum MySQLFuzzerReplay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let file = fopen(path, "rb") else {
                print("cannot open \(path)")
                exit(1)
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                bytes += chunk[0..<count]
            }
            fclose(file)
            MySQLFuzzInput.run(bytes)
        }
    }
}
#endif
