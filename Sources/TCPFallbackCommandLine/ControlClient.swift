import TCPFallback

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `tcp-fallback ctl [-control PATH] COMMAND...`: sends one command to a running proxy's
/// control socket and prints the answer. Exit status 0 when the command succeeded, 1 when
/// the proxy answered with an error or could not be reached, 2 for a bad command line.
enum ControlClient {
    static let defaultPath = "/run/tcp-fallback.sock"

    static let usage = """
        usage: tcp-fallback ctl [-control PATH] COMMAND [--json]
        Sends COMMAND to the control socket of a running tcp-fallback (default \(defaultPath)).
        Commands:
        """ + ControlCommand.usage.map { "  " + $0 }.joined(separator: "\n")

    static func main(_ arguments: [String]) -> CommandLineTool.ExitStatus {
        var path = defaultPath
        var words: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if ["-control", "--control"].contains(argument) {
                guard index < arguments.count else {
                    CommandLineTool.printError("tcp-fallback ctl: flag needs an argument: -control\n\(usage)")
                    return .usage
                }
                path = arguments[index]
                index += 1
            } else if argument.hasPrefix("-control=") || argument.hasPrefix("--control=") {
                path = String(argument.drop(while: { $0 != "=" }).dropFirst())
            } else if ["-h", "-help", "--help"].contains(argument) {
                print(usage)
                return .success
            } else {
                words.append(argument)
            }
        }
        guard !words.isEmpty else {
            CommandLineTool.printError("tcp-fallback ctl: missing command\n\(usage)")
            return .usage
        }
        do {
            let answer = try ControlExchange.send(words.joined(separator: " "), to: path)
            if answer.ok { print(answer.text) } else { CommandLineTool.printError(answer.text) }
            return answer.ok ? .success : .failure
        } catch {
            CommandLineTool.printError("tcp-fallback ctl: \(error)")
            return .failure
        }
    }
}
