import ArgumentParser

/// Rewrites a command line written for Go's `flag` package into the GNU form that
/// ArgumentParser reads, so every `tcp_fallback` command line keeps working:
///
/// - `-name`, `-name=value`, `-name value` become `--name`, `--name=value`, `--name=value`;
/// - booleans take `-name`, `-name=true` or `-name=false` (Go's `strconv.ParseBool` words),
///   and the last one given wins, as in Go;
/// - after `--`, everything is a positional argument.
///
/// An option's value is joined to its name, so values that start with `-` (`-maxthreads -1`)
/// reach validation and get a proper message instead of being taken for flags.
enum GoFlagSyntax {
    /// - Parameters:
    ///   - booleanFlags: booleans that default to false: passed on as `--name` when true.
    ///   - booleanOptions: booleans that default to true: passed on as `--name=true|false`.
    static func normalize(
        _ arguments: [String], booleanFlags: Set<String>, booleanOptions: Set<String> = [], valueOptions: Set<String>
    ) throws(ValidationError) -> [String] {
        var output: [String] = []
        var booleans: [String: Bool] = [:]
        var booleanOrder: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                output.append(contentsOf: arguments[(index - 1)...])
                break
            }
            let dashes = argument.hasPrefix("--") ? 2 : argument.hasPrefix("-") ? 1 : 0
            guard dashes > 0, let first = argument.dropFirst(dashes).first, first.isLetter else {
                output.append(argument)  // a positional argument, or a value such as -1
                continue
            }
            let body = argument.dropFirst(dashes)
            let name = String(body.prefix(while: { $0 != "=" }))
            let attached: String? = body.contains("=") ? String(body.drop(while: { $0 != "=" }).dropFirst()) : nil
            if booleanFlags.contains(name) || booleanOptions.contains(name) {
                var value = true
                if let attached {
                    guard let parsed = parseBool(attached) else {
                        throw ValidationError("invalid boolean value \"\(attached)\" for -\(name)")
                    }
                    value = parsed
                }
                if booleans[name] == nil { booleanOrder.append(name) }
                booleans[name] = value
            } else if valueOptions.contains(name) {
                if let attached {
                    output.append("--\(name)=\(attached)")
                } else if index < arguments.count {
                    output.append("--\(name)=\(arguments[index])")
                    index += 1
                } else {
                    throw ValidationError("flag needs an argument: -\(name)")
                }
            } else if name.count == 1 && dashes == 1 {
                output.append(argument)  // a short flag such as -h
            } else {
                output.append("--" + body)  // help, version, or unknown: ArgumentParser names it
            }
        }
        let flags = booleanOrder.compactMap { name -> String? in
            if booleanOptions.contains(name) { return "--\(name)=\(booleans[name]!)" }
            return booleans[name] == true ? "--\(name)" : nil
        }
        output.insert(contentsOf: flags, at: 0)
        return output
    }

    /// Go's `strconv.ParseBool`.
    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": true
        case "0", "f", "F", "false", "FALSE", "False": false
        default: nil
        }
    }

    /// The process's own arguments in GNU form, for a configuration file's listeners to
    /// inherit (empty if they do not parse, which `CommandLineTool.parse` already refused).
    static func normalizedForReload(_ arguments: [String]) -> [String] {
        (try? normalize(
            arguments, booleanFlags: TCPFallbackCommand.booleanFlags, booleanOptions: TCPFallbackCommand.booleanOptions,
            valueOptions: TCPFallbackCommand.valueOptions)) ?? []
    }
}
